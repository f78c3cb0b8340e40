"""Domain errors: routes and engines raise these; `app.main` turns them into JSON responses."""

from __future__ import annotations


class DatagateError(Exception):
    """Base of every error a client can see. `code` is stable; `message` is for people."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidRequest(DatagateError):
    """A request field is missing, malformed or names something that does not exist."""

    status_code = 422
    code = "invalid_request"


class InvalidData(DatagateError):
    """The dataset could not be read: empty, truncated, ragged, binary, wrongly encoded."""

    status_code = 422
    code = "invalid_data"


class UnsupportedFormat(DatagateError):
    """The dataset's format is not one datagate reads."""

    status_code = 415
    code = "unsupported_format"


class PayloadTooLarge(DatagateError):
    """An upload or dataset is over a configured limit (bytes or rows)."""

    status_code = 413
    code = "payload_too_large"


class SuiteNotFound(DatagateError):
    status_code = 404
    code = "suite_not_found"


class SuiteInvalid(DatagateError):
    """A suite exists but cannot be used: bad JSON, unknown expectation type, bad arguments."""

    status_code = 422
    code = "suite_invalid"


class NotFound(DatagateError):
    status_code = 404
    code = "not_found"


class Forbidden(DatagateError):
    status_code = 403
    code = "forbidden"


class Unauthorized(DatagateError):
    status_code = 401
    code = "unauthorized"


class Conflict(DatagateError):
    status_code = 409
    code = "conflict"


class TooManyFailures(DatagateError):
    """Too many wrong keys from one address: wait for Retry-After."""

    status_code = 429
    code = "too_many_failures"


class ServiceBusy(DatagateError):
    status_code = 503
    code = "service_busy"


class UpstreamError(DatagateError):
    """A data source the service was told to read from failed (object store, database)."""

    status_code = 502
    code = "upstream_error"


class UpstreamTimeout(DatagateError):
    status_code = 504
    code = "upstream_timeout"


class ValidationTimeout(DatagateError):
    status_code = 504
    code = "validation_timeout"
