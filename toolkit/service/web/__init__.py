"""`gtkit serve`'s web app: accounts, the annotator flow, admin pages and media, over a Database.

`create_app(ServeConfig(db=..., output_uri=...))` builds it; `gtkit serve run` serves it with
gunicorn. The worker task page is the local portal's (toolkit.service.portal): the same template
rendering, crowd-form stand-in and assets.
"""

from toolkit.service.web.app import create_app
from toolkit.service.web.context import ServeConfig

__all__ = ["ServeConfig", "create_app"]
