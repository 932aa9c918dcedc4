"""The three error classes a job can fail with. Each has exactly one handling path in the worker:

- ``RetryableError``: try again later (exponential backoff with jitter, or the server's retry-after),
  dead-lettered once the attempts are used up. Any exception that is not one of these is treated as retryable.
- ``ReauthRequired``: the channel account's credentials no longer work; its jobs are parked and the account is
  flagged ``needs_reauth`` until someone reconnects it.
- ``PermanentError``: retrying cannot help (bad data, business rule); dead-lettered at once with the reason.
"""

from __future__ import annotations


class JobError(Exception):
    error_class = "retryable"


class RetryableError(JobError):
    error_class = "retryable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReauthRequired(JobError):
    error_class = "reauth"


class PermanentError(JobError):
    error_class = "permanent"


def classify(error: BaseException) -> str:
    return error.error_class if isinstance(error, JobError) else "retryable"
