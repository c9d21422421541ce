"""Shared fixtures. AWS is always moto (or botocore's Stubber); never real AWS."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
EXAMPLE_BUCKET = "example-feedback-bucket"
EXAMPLE_MIRROR = f"s3://{EXAMPLE_BUCKET}/={EXAMPLES}"
# The service's test helpers (a throwaway PostgreSQL, fresh databases) serve the browser tests too.
sys.path.insert(0, str(Path(__file__).resolve().parent / "service"))


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch):
    """Fake credentials and a fixed region so nothing can reach a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def examples() -> Path:
    return EXAMPLES


@pytest.fixture
def example_mirror() -> str:
    """--mirror value that maps the sample bucket onto examples/."""
    return EXAMPLE_MIRROR


@pytest.fixture
def aws():
    """moto's mock of every AWS service, active for the test."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def s3_bucket(aws):
    """An empty moto S3 bucket; returns its name."""
    import boto3

    name = "gtkit-test-bucket"
    boto3.client("s3", region_name=os.environ["AWS_DEFAULT_REGION"]).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The PostgreSQL server of this test session: GTKIT_TEST_POSTGRES_URL, or a throwaway cluster
    (service_helpers.throwaway_cluster) started on first use and stopped at the end."""
    url = os.environ.get("GTKIT_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from service_helpers import throwaway_cluster

    with throwaway_cluster() as url:
        yield url
