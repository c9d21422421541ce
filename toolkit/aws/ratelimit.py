"""Client-side pacing for per-account request quotas (ApplyGuardrail's requests per minute).

`TokenBucket` spaces calls to a steady rate with a small burst; `call_with_backoff` retries a call the
service throttled anyway (other clients share the quota), halving the bucket's rate each time and
restoring it slowly on success: additive increase, multiplicative decrease, as botocore's adaptive
retry mode does for one client. Clock and sleep are injected so tests run in no time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from toolkit.aws.errors import aws_error

T = TypeVar("T")
THROTTLE_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException",
                            "Throttling", "RequestLimitExceeded"})


class TokenBucket:
    """At most `per_minute` acquisitions per minute on average, `burst` at once."""

    def __init__(self, per_minute: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if per_minute <= 0:
            raise ValueError("the rate must be positive")
        self.max_rate = per_minute / 60.0
        self.rate = self.max_rate
        self.capacity = burst if burst is not None else max(1.0, self.rate)  # one second's worth
        self.tokens = self.capacity
        self.clock, self.sleep = clock, sleep
        self.last = clock()
        self.waited = 0.0

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now

    def acquire(self) -> None:
        self._refill()
        if self.tokens < 1:
            delay = (1 - self.tokens) / self.rate
            self.sleep(delay)
            self.waited += delay
            self._refill()
        self.tokens -= 1

    def slow_down(self) -> None:
        """Throttled: halve the rate (not below one call per minute)."""
        self.rate = max(self.rate / 2, 1 / 60)
        self.tokens = min(self.tokens, 0.0)

    def speed_up(self) -> None:
        """A success: win back 5% of the configured rate, up to it."""
        self.rate = min(self.max_rate, self.rate + self.max_rate / 20)


def is_throttled(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error.get("Code") in THROTTLE_CODES or status == 429
    found = aws_error(exc)
    return found is not None and found.kind == "throttled"


def call_with_backoff(bucket: TokenBucket, call: Callable[[], T], *, attempts: int = 8,
                      base_delay: float = 1.0, max_delay: float = 60.0) -> T:
    """`call()` paced by `bucket`; on throttling the rate halves and the call waits and retries (exponential,
    capped), at most `attempts` times in all. Other errors propagate at once."""
    for attempt in range(1, attempts + 1):
        bucket.acquire()
        try:
            result = call()
        except Exception as exc:
            if not is_throttled(exc) or attempt == attempts:
                raise
            bucket.slow_down()
            delay = min(max_delay, base_delay * 2 ** (attempt - 1))
            bucket.sleep(delay)
            bucket.waited += delay
            continue
        bucket.speed_up()
        return result
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["TokenBucket", "call_with_backoff", "is_throttled"]
