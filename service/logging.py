"""Structured JSON logs (structlog) with a request id on every line and secrets redacted.

Each request gets an id (a sane incoming ``X-Request-ID`` is kept, otherwise a new one) that is bound to the
log context, echoed in the ``X-Request-ID`` response header and put into problem bodies. Any event key that
looks like a secret (password, token, secret, code, authorization, cookie, key) is replaced by
``"[redacted]"`` before rendering, so a careless log call cannot leak one.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import MutableMapping
from typing import Any, Final

import structlog
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestContextMiddleware", "configure_logging", "redact_secrets"]

_SECRET_KEY = re.compile(
    r"pass(word)?|token|secret|authorization|cookie|(^|_)code$|otp|(^|_)key$|api_key|refresh", re.I
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
REDACTED: Final = "[redacted]"


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank every value whose key names a secret (recursively in dicts)."""

    def clean(mapping: MutableMapping[str, Any]) -> None:
        for key, value in list(mapping.items()):
            if key != "event" and _SECRET_KEY.search(str(key)):
                mapping[key] = REDACTED
            elif isinstance(value, dict):
                clean(value)

    clean(event_dict)
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted: a stream captured at
    configuration time may be closed by then (a redirected or captured stderr), and a late record from a
    driver's worker thread must not hit it."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: str) -> None:
    """Route structlog and the standard library (uvicorn, sqlalchemy) to JSON lines on stderr."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level)),
        # Resolve sys.stderr at each call (not at configuration) so redirected stderr is honoured.
        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn's access log would print query strings; our middleware logs requests without them.
    logging.getLogger("uvicorn.access").disabled = True
    # alembic announces its dialect on every readiness probe; only its warnings are worth a line.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


class RequestContextMiddleware:
    """ASGI middleware: request id, log context and one access-log line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("signalos.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # type: ignore[typeddict-unknown-key]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),  # never the query string: it may carry a token
                status=status_holder.get("status", 500),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
