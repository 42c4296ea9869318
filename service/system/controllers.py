"""``/health`` (alive), ``/ready`` (database reachable and migrations current) and ``/problems/{code}``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.migrate import current_revision, head_revision
from service.problems import PROBLEMS, ProblemError, problem_response

__all__ = ["health", "problem_type", "ready"]


class Health(msgspec.Struct):
    """Liveness answer."""

    status: str
    version: str


class Readiness(msgspec.Struct):
    """Readiness answer: database reachable and schema at the newest migration."""

    status: str
    database: str
    revision: str | None
    head: str | None


class ProblemTypeOut(msgspec.Struct):
    """Documentation of one problem code."""

    code: str
    status: int
    title: str
    description: str


@get("/health", tags=["system"], summary="Liveness", description="Public. 200 while the process serves requests.")
async def health() -> Health:
    """The process is alive."""
    from signalos_core import __version__

    return Health(status="ok", version=__version__)


@get(
    "/ready",
    tags=["system"],
    summary="Readiness",
    description="Public. 200 when the database answers and migrations are current, else 503.",
)
async def ready(request: Request[Any, Any, Any]) -> Response[Any]:
    """Whether this replica can serve traffic."""
    engine: AsyncEngine = request.app.state.engine
    head = head_revision()
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            revision = await connection.run_sync(current_revision)
    except Exception:
        return problem_response(request, "service_unavailable", detail="database unreachable")
    if revision != head:
        return problem_response(
            request,
            "service_unavailable",
            detail="database schema is not at the newest migration",
            extra={"revision": revision, "head": head},
        )
    return Response(Readiness(status="ready", database="ok", revision=revision, head=head), status_code=HTTP_200_OK)


@get("/problems/{code:str}", tags=["system"], summary="Problem type", description="Public. Documents an error code.")
async def problem_type(code: FromPath[str]) -> ProblemTypeOut:
    """What an error code means (the ``type`` URI of every problem body resolves here)."""
    problem = PROBLEMS.get(code)
    if problem is None:
        raise ProblemError("not_found", detail=f"unknown problem code {code!r}")
    return ProblemTypeOut(
        code=problem.code, status=problem.status, title=problem.title, description=problem.description
    )
