"""AWS side of gtkit: CloudFormation stacks, UI asset hosting, Ground Truth labeling jobs.

- `config`: the deploy config file (`.gtkit/deploy-<stack>.json`) other commands read.
- `assets`: content-hashed, immutable UI asset uploads.
- `stack`: create/update/delete a stack with readable progress and failure reasons.
- `deploy`: `gtkit deploy` / `gtkit destroy` end to end.
- `jobs`: `CreateLabelingJob` request building and validation, status, stop, list, fetch.
"""
