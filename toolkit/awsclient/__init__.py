"""How every stage calls AWS: one client retry configuration, client-side pacing for per-account
quotas, and AWS failures as one line. It sits below the stages (storage, ingest, export, aws, cli
all use it) and imports nothing of theirs."""

from botocore.config import Config

# Adaptive retries: botocore's client-side rate limiting plus backoff on throttling.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10})

__all__ = ["RETRY_CONFIG"]
