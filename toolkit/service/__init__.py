"""`gtkit serve`'s library core: a labeling service on a database (see docs/serve.md)."""
