"""AWS failures as one line that names the call or URI and says what to do.

`aws_error(exc)` recognises a botocore failure - raised directly, or wrapped by smart_open, a thread
pool or our own code (it follows `__cause__` / `__context__`) - and returns an `AwsError`:

    S3 PutObject s3://bucket/peaks/int-1.peaks.bin.gz: no AWS credentials found; configure them ...

The CLI maps every `AwsError` (and every exception `aws_error` recognises) to that line and exit
code 1, in one place (`toolkit.cli`). Library code may raise `AwsError` itself, or use
`is_global(exc)` to tell a failure of the whole run (credentials, endpoint, throttling) from one
that concerns a single object (a missing or forbidden key).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    EndpointResolutionError,
    HTTPClientError,
    InvalidRegionError,
    NoAuthTokenError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
    UnknownEndpointError,
)
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from toolkit.errors import GtkitError

Kind = Literal["credentials", "expired", "denied", "no-bucket", "no-object", "throttled", "endpoint", "region",
               "other"]

CHECK_IDENTITY = "check with `aws sts get-caller-identity`"
CREDENTIALS_HINT = ("configure them (`aws configure`, or `aws sso login --profile NAME` and AWS_PROFILE=NAME) and "
                    + CHECK_IDENTITY)
EXPIRED_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired", "InvalidClientTokenId",
    "UnrecognizedClientException", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
    "AuthFailure", "InvalidSignatureException",
})
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AllAccessDisabled",
                          "Forbidden", "403"})
NO_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# botocore's own retry rule for "this was throttled" (the codes its retry modes back off on).
_THROTTLED = ThrottledRetryableChecker()
# IAM actions whose names differ from the S3 operation that needs them.
S3_ACTIONS = {
    "HeadObject": "GetObject", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
    "HeadBucket": "ListBucket", "ListObjectVersions": "ListBucketVersions", "DeleteObjects": "DeleteObject",
    "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject", "CompleteMultipartUpload": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload", "CopyObject": "PutObject",
}
# Request parameters that name what a call is about, in the order they are tried.
RESOURCE_PARAMS = ("StackName", "LabelingJobName", "WorkteamName", "RoleArn", "FunctionName", "jobIdentifier",
                   "jobName", "guardrailIdentifier")


class AwsError(GtkitError, RuntimeError):
    """An AWS call that failed, as one line: `<call>: <problem>; <what to do>`."""

    def __init__(self, call: str, problem: str, hint: str = "", kind: Kind = "other"):
        self.call, self.problem, self.hint, self.kind = call, problem, hint, kind
        super().__init__(one_line(f"{call}: {problem}" + (f"; {hint}" if hint else "")))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


@dataclass(frozen=True)
class Call:
    """The API call an exception came from, when its traceback still holds botocore's frame."""

    service: str  # service id: "S3", "CloudFormation", "SageMaker", "STS"
    operation: str
    params: dict[str, Any]
    signing_name: str  # IAM prefix: s3, cloudformation, sagemaker, sts
    endpoint: str | None

    @property
    def resource(self) -> str | None:
        bucket, key = self.params.get("Bucket"), self.params.get("Key")
        if bucket:
            return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
        for name in RESOURCE_PARAMS:
            if self.params.get(name):
                return str(self.params[name])
        return None

    @property
    def action(self) -> str:
        name = S3_ACTIONS.get(self.operation, self.operation) if self.signing_name == "s3" else self.operation
        return f"{self.signing_name}:{name}"

    def __str__(self) -> str:
        resource = self.resource
        return f"{self.service} {self.operation}" + (f" {resource}" if resource else "")


def find_call(exc: BaseException) -> Call | None:
    """botocore's `BaseClient._make_api_call(operation_name, api_params)` frame in `exc`'s traceback.

    Every client call, and the credential, endpoint and retry errors raised while making it, passes
    through that frame; its locals say which operation on which bucket/key or stack failed.
    """
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_name == "_make_api_call" and "api_params" in frame.f_locals:
            found = frame.f_locals  # the innermost call wins
    if found is None:
        return None
    client, params = found.get("self"), found.get("api_params") or {}
    try:
        model = client.meta.service_model
        service, signing, endpoint = model.service_id, model.signing_name, client.meta.endpoint_url
    except AttributeError:
        return None
    return Call(str(service), str(found.get("operation_name")), dict(params) if isinstance(params, dict) else {},
                str(signing), endpoint)


def _botocore_cause(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, BotoCoreError | ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def aws_error(exc: BaseException, call: str | None = None) -> AwsError | None:
    """The one-line explanation of a botocore failure in `exc`'s chain, or None if there is none.

    `call` names the operation when the caller knows it better (e.g. "read s3://bucket/key").
    """
    if isinstance(exc, AwsError):
        return exc
    cause = _botocore_cause(exc)
    if cause is None:
        return None
    found = find_call(cause)
    where = call or (str(found) if found else None)
    if isinstance(cause, ClientError):
        where = where or f"AWS {cause.operation_name}"
        return _client_error(cause, where, found)
    return _botocore_error(cause, where or "AWS")


def _client_error(exc: ClientError, where: str, found: Call | None) -> AwsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = one_line(error.get("Message") or "")
    meta = exc.response.get("ResponseMetadata", {})
    status = meta.get("HTTPStatusCode")
    if code in EXPIRED_CODES:
        return AwsError(where, f"the AWS credentials are expired or invalid ({code})",
                        "refresh them (`aws sso login`, a new session token, or a valid access key) and "
                        + CHECK_IDENTITY, "expired")
    if code in DENIED_CODES:
        needed = found.action if found else exc.operation_name
        if found and found.resource:
            needed += f" on {found.resource}"
        detail = f" ({message})" if message and message != "Access Denied" else ""
        return AwsError(where, "access denied" + detail, f"the identity in use needs {needed} ({CHECK_IDENTITY})",
                        "denied")
    if code == "NoSuchBucket":
        bucket = (found.params.get("Bucket") if found else None) or error.get("BucketName") or "?"
        return AwsError(where, f"bucket {bucket} does not exist",
                        "check the bucket name (and the account and Region of your credentials)", "no-bucket")
    if code in NO_OBJECT_CODES and (found is None or found.signing_name == "s3"):
        return AwsError(where, "no such object", "check the URI", "no-object")
    if status == 429 or _THROTTLED.is_retryable(RetryContext(attempt_number=1, parsed_response=exc.response)):
        retries = meta.get("RetryAttempts", 0)
        return AwsError(where, f"AWS throttled the request ({code or status}), still after {retries} retries",
                        "wait a minute and run again, with fewer parallel --jobs if the command has the option",
                        "throttled")
    return AwsError(where, f"{code}: {message}" if message else code or "request failed")


def _botocore_error(exc: BaseException, where: str) -> AwsError:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | NoAuthTokenError):
        return AwsError(where, "no AWS credentials found", CREDENTIALS_HINT, "credentials")
    if isinstance(exc, ProfileNotFound):
        return AwsError(where, one_line(str(exc)), "set AWS_PROFILE to a profile of ~/.aws/config", "credentials")
    if isinstance(exc, TokenRetrievalError | SSOTokenLoadError | UnauthorizedSSOTokenError | SSOError
                  | CredentialRetrievalError):
        return AwsError(where, f"the AWS credentials are expired or cannot be loaded ({one_line(str(exc))})",
                        "refresh them (`aws sso login --profile NAME`) and " + CHECK_IDENTITY, "expired")
    if isinstance(exc, NoRegionError):
        return AwsError(where, "no AWS Region configured", "pass --region or set AWS_REGION", "region")
    if isinstance(exc, EndpointConnectionError | HTTPClientError | EndpointResolutionError | UnknownEndpointError
                  | InvalidRegionError):
        return AwsError(where, f"cannot reach AWS ({one_line(str(exc))})",
                        "check the network or proxy, the Region (--region / AWS_REGION) and AWS_ENDPOINT_URL if set",
                        "endpoint")
    return AwsError(where, one_line(str(exc)))


def is_global(exc: BaseException) -> bool:
    """True for failures that concern the whole run (credentials, endpoint, Region, throttling), not one object."""
    error = aws_error(exc)
    return error is not None and error.kind in ("credentials", "expired", "throttled", "endpoint", "region")
