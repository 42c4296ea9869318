"""HTTP endpoints of the compliance area's profiles: a firm's profile versions with its compliance report and
audit verification, a trader's personal profiles, and the profiles shipped with SignalOS. Every handler carries
``TRADING_GUARDS``; firm routes are for the firm's admins (and platform admins), anyone else gets 404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import Example
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from service.compliance.controllers import example_body, provide_queries
from service.compliance.engine import builtin_kind, builtin_profiles
from service.compliance.models import ComplianceProfile
from service.compliance.queries import ComplianceQueries
from service.compliance.schemas import BuiltinProfileOut, FirmReportOut, ProfileIn, ProfileVersionOut, VerifyOut
from service.compliance.services import firm_admin_of, is_platform_admin
from service.problems import ProblemError
from service.security.guards import TRADING_GUARDS, current_user

__all__ = ["BuiltinProfileController", "FirmComplianceController", "PersonalProfileController"]


def _profile_out(row: ComplianceProfile, *, with_yaml: bool = False) -> ProfileVersionOut:
    return ProfileVersionOut(
        id=row.id, scope=row.scope, firm_id=row.firm_id, owner_id=row.owner_id, profile_id=row.profile_id,
        version=row.version, title=row.title, effective_from=row.effective_from, content_hash=row.content_hash,
        created_at=row.created_at, in_use=row.first_used_at is not None, yaml=row.yaml_text if with_yaml else None,
    )  # fmt: skip


# A fraction in (0, 1], checked by the handler: msgspec takes no bounds on a Decimal, so the document states them.
Near = Annotated[
    Decimal,
    QueryParameter(
        description="Usage fraction counted as near the limit, in (0, 1]",
        examples=[Example(value=0.8)],
        schema_extra={"type": "number", "pattern": None, "exclusiveMinimum": 0, "maximum": 1, "examples": [0.8],
                      "default": 0.8},
    ),
]  # fmt: skip


def _firm_key(request: Request[Any, Any, Any], firm_id: UUID) -> str:
    user = current_user(request)
    if not (firm_admin_of(user, firm_id) or is_platform_admin(user)):
        raise ProblemError("not_found", detail="No such firm")
    return f"firm:{firm_id}"


class FirmComplianceController(Controller):
    """A firm's profile versions, its compliance report and audit verification (its admins only)."""

    path = "/api/firms/{firm_id:uuid}"
    tags = ["compliance"]
    guards = TRADING_GUARDS
    dependencies = {"svc": Provide(provide_queries)}

    @post(
        "/profiles",
        summary="Upload a firm profile version",
        description="Validate and store; invalid YAML is 422 `profile_invalid` listing every error with line/column.",
    )
    async def upload(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], firm_id: FromPath[UUID],
        data: Annotated[ProfileIn, example_body("A minimal profile", {"yaml": "id: acme-challenge\nversion: '1'\neffective_from: 2026-01-01\nday_boundary: {timezone: Europe/Prague, at: '00:00'}\nrules: []\n"})],
    ) -> ProfileVersionOut:  # fmt: skip
        """Validate and store; invalid YAML is 422 ``profile_invalid`` listing every error with line/column."""
        key = _firm_key(request, firm_id)
        return _profile_out(await svc.accounts.upload_profile(current_user(request), key, "firm", data.yaml))

    @get(
        "/profiles",
        summary="List firm profile versions",
        description="Every version the firm uploaded, with whether it is in use (then immutable).",
    )
    async def list_versions(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], firm_id: FromPath[UUID]
    ) -> list[ProfileVersionOut]:
        """Every version the firm uploaded, with whether it is in use (then immutable)."""
        return [_profile_out(r) for r in await svc.accounts.list_profiles(_firm_key(request, firm_id))]

    @get(
        "/profiles/{profile_id:str}/versions/{version:str}",
        summary="Get a firm profile version",
        description="One version including its YAML text.",
    )
    async def get_version(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], firm_id: FromPath[UUID],
        profile_id: FromPath[str], version: FromPath[str],
    ) -> ProfileVersionOut:  # fmt: skip
        """One version including its YAML text."""
        row = await svc.accounts.get_profile(_firm_key(request, firm_id), profile_id, version)
        return _profile_out(row, with_yaml=True)

    @delete(
        "/profiles/{profile_id:str}/versions/{version:str}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete an unused version",
        description="Only versions no account has used (409 `profile_version_immutable` otherwise).",
    )
    async def delete_version(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], firm_id: FromPath[UUID],
        profile_id: FromPath[str], version: FromPath[str],
    ) -> None:  # fmt: skip
        """Only versions no account has used (409 ``profile_version_immutable`` otherwise)."""
        await svc.accounts.delete_profile(_firm_key(request, firm_id), profile_id, version)

    @get(
        "/compliance/report",
        summary="Firm compliance report",
        description="Breached, locked and near-limit accounts of the firm.",
    )
    async def report(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], firm_id: FromPath[UUID],
        near: Near = Decimal("0.8"),
    ) -> FirmReportOut:  # fmt: skip
        """Breached, locked and near-limit accounts of the firm."""
        if not (near.is_finite() and Decimal(0) < near <= Decimal(1)):
            raise ProblemError(
                "validation_error",
                detail="near must be in (0, 1]",
                extra={"errors": [{"field": "near", "message": "must be in (0, 1]"}]},
            )
        return await svc.firm_report(current_user(request), firm_id, near)

    @get(
        "/compliance/audit/verify",
        summary="Verify every chain of the firm",
        description="The chains of all the firm's accounts and of its profile publications.",
    )
    async def verify(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any], firm_id: FromPath[UUID]
    ) -> VerifyOut:
        """The chains of all the firm's accounts and of its profile publications."""
        return await svc.verify_firm(current_user(request), firm_id)


class PersonalProfileController(Controller):
    """A trader's personal profiles (for personal modes on their own accounts)."""

    path = "/api/me/compliance-profiles"
    tags = ["compliance"]
    guards = TRADING_GUARDS
    dependencies = {"svc": Provide(provide_queries)}

    @post(
        "/",
        summary="Upload a personal profile version",
        description="Validate and store a personal profile (same format and errors as firm profiles).",
    )
    async def upload(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any],
        data: Annotated[ProfileIn, example_body("A personal risk profile", {"yaml": "id: my-rules\nversion: '1'\neffective_from: 2026-01-01\nday_boundary: {timezone: Europe/London, at: '00:00'}\nrules: []\n"})],
    ) -> ProfileVersionOut:  # fmt: skip
        """Validate and store a personal profile (same format and errors as firm profiles)."""
        user = current_user(request)
        return _profile_out(await svc.accounts.upload_profile(user, f"user:{user.id}", "personal", data.yaml))

    @get(
        "/",
        summary="List my personal profiles",
        description="Every personal profile version of the caller.",
    )
    async def list_versions(
        self, svc: NamedDependency[ComplianceQueries], request: Request[Any, Any, Any]
    ) -> list[ProfileVersionOut]:
        """Every personal profile version of the caller."""
        return [_profile_out(r) for r in await svc.accounts.list_profiles(f"user:{current_user(request).id}")]


class BuiltinProfileController(Controller):
    """The profiles shipped with SignalOS."""

    path = "/api/compliance/builtin-profiles"
    tags = ["compliance"]
    guards = TRADING_GUARDS

    @get(
        "/",
        summary="List shipped profiles",
        description="Every shipped firm and regulatory profile with its version and effective date.",
    )
    async def list_builtin(self) -> list[BuiltinProfileOut]:
        """Every shipped firm and regulatory profile with its version and effective date."""
        return [
            BuiltinProfileOut(
                profile_id=p.id, version=p.version, title=p.title, kind=builtin_kind(p.id),
                effective_from=dt.date.fromisoformat(p.effective_from),
            )
            for p in builtin_profiles()
        ]  # fmt: skip
