"""The three error classes a job can fail with. Each has exactly one handling path in the worker:

- ``RetryableError``: try again later (exponential backoff with jitter, or the server's retry-after),
  dead-lettered once the attempts are used up. Any exception that is not one of these is treated as retryable.
- ``ReauthRequired``: the channel account's credentials no longer work; its jobs are parked and the account is
  flagged ``needs_reauth`` until someone reconnects it.
- ``PermanentError``: retrying cannot help (bad data, business rule); dead-lettered at once with the reason.

``Deferred`` is a retryable error that is no failure: the outside system asked the hub to wait (a cost bucket to
refill). The job goes back to the queue for its ``retry_after`` without using up an attempt, and gives its worker
to other work meanwhile instead of sleeping in it.
"""

from __future__ import annotations


class JobError(Exception):
    error_class = "retryable"


class RetryableError(JobError):
    error_class = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Deferred(RetryableError):
    error_class = "deferred"


class ReauthRequired(JobError):
    error_class = "reauth"


class PermanentError(JobError):
    error_class = "permanent"


def classify(error: BaseException) -> str:
    return error.error_class if isinstance(error, JobError) else "retryable"
