"""RFC 9457 problem details: every error the API returns, with a stable machine-readable code.

A problem body looks like::

    {"type": "/problems/invalid_credentials", "title": "Invalid credentials", "status": 401,
     "detail": "...", "code": "invalid_credentials", "instance": "/api/auth/login", "request_id": "..."}

``type`` is a relative URI that resolves to ``GET /problems/{code}`` on the service, which documents the code.
Validation problems add ``errors: [{"field": "email", "message": "..."}]`` naming every bad field.
Stack traces never reach a client; unexpected errors become ``internal_error`` with the request id to quote.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from signalos_core import ConfigurationError, SignalOSError

__all__ = ["PROBLEMS", "ProblemError", "ProblemType", "exception_handlers", "problem_response", "register_problem"]

MEDIA_TYPE: Final = "application/problem+json"
_log = structlog.get_logger("signalos.errors")


@attrs.frozen
class ProblemType:
    """One kind of error the API can return."""

    code: str
    status: int
    title: str
    description: str


PROBLEMS: dict[str, ProblemType] = {}


def register_problem(code: str, status: int, title: str, description: str) -> ProblemType:
    """Declare a problem code (idempotent for identical declarations). Areas call this at import time."""
    problem = ProblemType(code, status, title, description)
    existing = PROBLEMS.setdefault(code, problem)
    if existing != problem:  # pragma: no cover - programming error caught by the registry test
        raise ValueError(f"problem code {code!r} declared twice with different content")
    return problem


for _code, _status, _title, _description in (
    (
        "validation_error",
        400,
        "Invalid request",
        "The request body, query or path failed validation; `errors` names each bad field.",
    ),
    ("bad_request", 400, "Bad request", "The request cannot be processed as sent."),
    (
        "not_authenticated",
        401,
        "Not authenticated",
        "No valid access token: missing, malformed, expired, revoked, or for a revoked session.",
    ),
    (
        "invalid_credentials",
        401,
        "Invalid credentials",
        "Email or password is wrong, or the account is temporarily locked. The response never says which.",
    ),
    (
        "invalid_refresh_token",
        401,
        "Invalid refresh token",
        "The refresh token is unknown, expired, or was already used (reuse revokes the whole session).",
    ),
    (
        "refresh_conflict",
        409,
        "Refresh already in progress",
        "The same client refreshed concurrently with this token; use the tokens from the request that succeeded.",
    ),
    ("forbidden", 403, "Forbidden", "Authenticated, but not allowed to do this."),
    ("not_found", 404, "Not found", "No such resource, or not visible to you."),
    ("method_not_allowed", 405, "Method not allowed", "The path exists but not with this method."),
    ("conflict", 409, "Conflict", "The request conflicts with the current state of the resource."),
    ("email_taken", 409, "Email already registered", "An account with this email exists."),
    ("unprocessable", 422, "Unprocessable", "The request is well-formed but cannot be applied."),
    ("weak_password", 422, "Weak password", "The password does not meet the policy (length 12-256, not the email)."),
    (
        "rate_limited",
        429,
        "Too many requests",
        "The per-client flood guard was hit; retry after the Retry-After/RateLimit-Reset delay.",
    ),
    ("internal_error", 500, "Internal error", "An unexpected error; the request id identifies it in the server logs."),
    ("service_unavailable", 503, "Service unavailable", "A dependency (usually the database) is not ready."),
):
    register_problem(_code, _status, _title, _description)


class ProblemError(HTTPException):
    """Raise to return a registered problem: ``raise ProblemError("email_taken", detail=...)``."""

    def __init__(
        self,
        code: str,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        problem = PROBLEMS[code]
        super().__init__(detail=detail or problem.title, status_code=problem.status, headers=headers)
        self.code = code
        self.problem_extra = extra or {}


def problem_response(
    request: Request[Any, Any, Any],
    code: str,
    *,
    detail: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    status: int | None = None,
) -> Response[dict[str, Any]]:
    """Build the problem+json response for a registered code."""
    problem = PROBLEMS[code]
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": problem.title,
        "status": status or problem.status,
        "detail": detail or problem.title,
        "code": code,
        "instance": request.url.path,
    }
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return Response(content=body, status_code=status or problem.status, media_type=MEDIA_TYPE, headers=headers)


def _validation_errors(extra: Any) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key") or ""
            message = str(item.get("message", "invalid"))
            errors.append({"field": _field_name(key, message), "message": message, "source": item.get("source")})
    return errors


# msgspec names the object a required field is missing from, and Litestar calls the body's root "data": name the
# missing field itself ("at", "order.at"), which is what a client has to add.
_MISSING_FIELD = re.compile(r"^Object missing required field `([^`]+)`")


def _field_name(key: str, message: str) -> str:
    missing = _MISSING_FIELD.match(message)
    if missing:
        parent = "" if key in ("", "data") else key
        return f"{parent}.{missing.group(1)}" if parent else missing.group(1)
    return key or _field_from_message(message)


# Litestar reports a missing parameter only in the detail: "Missing required query parameter 'x' for path ...".
_MISSING_PARAMETER = re.compile(r"^Missing required (\w+) parameter '([^']*)'")


def _errors_from_detail(detail: str) -> list[dict[str, Any]]:
    match = _MISSING_PARAMETER.match(detail)
    if match:
        source, field = match.groups()
        return [{"field": field, "message": f"missing required {source} parameter", "source": source}]
    # Any other validation failure without details still names what was refused.
    return [{"field": "request", "message": detail, "source": None}]


def _field_from_message(message: str) -> str:
    # msgspec reports the location as "... - at `$.a.b`"; turn that into a field name.
    marker = "at `$."
    if marker in message:
        return message.split(marker, 1)[1].rstrip("`")
    return ""


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, ProblemError):
        return problem_response(request, exc.code, detail=exc.detail, extra=exc.problem_extra, headers=exc.headers)
    if isinstance(exc, ValidationException):
        return problem_response(
            request,
            "validation_error",
            detail="The request failed validation",
            extra={"errors": _validation_errors(exc.extra) or _errors_from_detail(exc.detail)},
        )
    mapping: list[tuple[type[HTTPException], str]] = [
        (NotAuthorizedException, "not_authenticated"),
        (PermissionDeniedException, "forbidden"),
        (NotFoundException, "not_found"),
        (MethodNotAllowedException, "method_not_allowed"),
        (TooManyRequestsException, "rate_limited"),
    ]
    for exc_type, code in mapping:
        if isinstance(exc, exc_type):
            detail = exc.detail if code != "not_authenticated" else "Authentication required"
            return problem_response(request, code, detail=detail, headers=exc.headers)
    if exc.status_code == 429:
        return problem_response(request, "rate_limited", headers=exc.headers)
    if exc.status_code >= 500:
        return problem_response(request, "internal_error", status=exc.status_code)
    return problem_response(request, "bad_request", detail=exc.detail, status=exc.status_code, headers=exc.headers)


def _handle_domain(request: Request[Any, Any, Any], exc: SignalOSError) -> Response[dict[str, Any]]:
    # Domain errors that escape a service are input problems; they carry their own context attributes.
    extra: dict[str, Any] = {}
    for attribute in ("field", "rule_id", "profile_id", "plugin_id", "reason", "issues", "line", "column"):
        value = getattr(exc, attribute, None)
        if value not in (None, [], ""):
            extra[attribute] = value if attribute != "issues" else [_jsonable(i) for i in value]
    if isinstance(exc, ConfigurationError):  # pragma: no cover - configuration errors stop startup first
        return problem_response(request, "internal_error")
    return problem_response(request, "unprocessable", detail=str(exc), extra=extra)


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return value if isinstance(value, dict | str | int | float) else str(value)


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.error("unhandled_exception", exc_type=type(exc).__name__, path=request.url.path, exc_info=exc)
    return problem_response(request, "internal_error", status=HTTP_500_INTERNAL_SERVER_ERROR)


exception_handlers: dict[Any, Any] = {
    HTTPException: _handle_http,
    SignalOSError: _handle_domain,
    Exception: _handle_unexpected,
}
