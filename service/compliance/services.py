"""Trading accounts, compliance modes and profile versions: who may see and change what.

Visibility: an account is visible to its owner, to the admins of the firm that funds it, and to platform
admins; to anybody else it does not exist (404, so ids cannot be probed). Modes: the mode of a firm-funded
account is set only by that firm's ``firm_admin`` (a firm profile or a shipped one); on their own (unfunded)
accounts traders choose a shipped regulatory/firm profile or one of their personal profiles. Every switch is
recorded in the mode history and in the account's audit chain with who, when and why.

Profile versions are immutable once any account has used them; ``effective_from`` is honoured: a version may
be uploaded ahead of time but assigned only from its effective date (a dry run may use it earlier).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import Firm, Role, User
from service.compliance.audit import DatabaseAuditLog, account_chain
from service.compliance.engine import (
    EngineCache,
    builtin_kind,
    encode_state,
    initial_state,
    load_builtin,
    load_profile_text,
)
from service.compliance.models import ComplianceProfile, ModeChange, TradingAccount
from service.problems import ProblemError, register_problem
from service.security.tokens import CurrentUser
from signalos_core.audit import AuditEntry
from signalos_core.compliance import Engine, Profile

__all__ = ["ComplianceService", "ResolvedProfile", "firm_admin_of", "is_platform_admin"]

register_problem(
    "mode_forbidden",
    403,
    "Mode change not allowed",
    "A firm-funded account's mode is set only by that firm's admin; traders choose regulatory or personal "
    "modes on their own accounts only.",
)
register_problem(
    "profile_not_effective",
    422,
    "Profile version not yet effective",
    "The version's effective_from is in the future; assign it from that date (a dry run may use it now).",
)
register_problem(
    "profile_version_immutable",
    409,
    "Profile version in use",
    "An account has used this version, so it can no longer change; upload it under a new version.",
)


def is_platform_admin(user: CurrentUser) -> bool:
    """Whether the caller administers the platform."""
    return user.role == Role.PLATFORM_ADMIN.value


def firm_admin_of(user: CurrentUser, firm_id: UUID | None) -> bool:
    """Whether the caller is an admin of firm ``firm_id``."""
    return firm_id is not None and user.role == Role.FIRM_ADMIN.value and user.firm_id == firm_id


class ResolvedProfile(msgspec.Struct, frozen=True, kw_only=True):
    """A profile version chosen for an account (or a dry run), ready to compile."""

    source: str
    kind: str
    profile_id: str
    version: str
    params: dict[str, Any]
    identity: str
    row_id: UUID | None
    yaml_text: str | None

    def load(self) -> Profile:
        """Load the profile with the account's parameters."""
        if self.yaml_text is None:
            if self.row_id is not None:  # pragma: no cover - current_mode reads the YAML when not cached
                raise RuntimeError(f"profile version {self.row_id} has no YAML loaded")
            return load_builtin(self.profile_id, self.params)
        return load_profile_text(self.yaml_text, self.params)


class ComplianceService:
    """Accounts, modes and profiles over one database session (commits are explicit here)."""

    def __init__(self, db: AsyncSession, audit: DatabaseAuditLog, engines: EngineCache) -> None:
        self.db = db
        self.audit = audit
        self.engines = engines

    # ------------------------------------------------------------------------------------------- accounts
    async def create_account(self, user: CurrentUser, data: Any) -> TradingAccount:
        """Register a trading account (see TradingAccountIn for who may set owner and firm)."""
        size = Decimal(data.account_size)
        if not size.is_finite() or size <= 0:
            raise ProblemError(
                "validation_error",
                detail="account_size must be a positive number",
                extra={"errors": [{"field": "account_size", "message": "must be a positive number"}]},
            )
        owner_id = data.owner_id or user.id
        firm_id = data.firm_id
        if firm_id is not None and not (firm_admin_of(user, firm_id) or is_platform_admin(user)):
            raise ProblemError("forbidden", detail="Only the firm's admins register accounts the firm funds")
        if owner_id != user.id:
            if firm_id is None and not is_platform_admin(user):
                raise ProblemError("forbidden", detail="Only a firm admin (for a funded account) sets another owner")
            if await self.db.get(User, owner_id) is None:
                raise ProblemError("not_found", detail="No such owner")
        if firm_id is not None and await self.db.get(Firm, firm_id) is None:
            raise ProblemError("not_found", detail="No such firm")
        now = dt.datetime.now(dt.UTC)
        account_id = uuid.uuid4()
        account = TradingAccount(
            id=account_id, owner_id=owner_id, firm_id=firm_id, name=data.name, broker=data.broker,
            platform=data.platform, account_size=str(size), currency=data.currency, mode_params={},
            state=encode_state(initial_state(str(account_id), size, data.currency, now)), state_version=0,
            status="active",
        )  # fmt: skip
        self.db.add(account)
        await self.db.commit()
        return account

    def can_view(self, user: CurrentUser, account: TradingAccount) -> bool:
        """Owner, the funding firm's admins, platform admins."""
        return account.owner_id == user.id or firm_admin_of(user, account.firm_id) or is_platform_admin(user)

    async def get_account(self, user: CurrentUser, account_id: UUID, *, for_update: bool = False) -> TradingAccount:
        """The account if the caller may see it, else 404 (``for_update``: row-locked on PostgreSQL)."""
        # populate_existing: the state is written with Core UPDATEs, so never trust the identity map's copy.
        account = await self.db.get(TradingAccount, account_id, populate_existing=True, with_for_update=for_update)
        if account is None or not self.can_view(user, account):
            raise ProblemError("not_found", detail="No such trading account")
        return account

    async def list_accounts(self, user: CurrentUser, firm_id: UUID | None) -> list[TradingAccount]:
        """The caller's own accounts, or a firm's accounts for its admins (all firms for platform admins)."""
        statement = select(TradingAccount).order_by(TradingAccount.created_at, TradingAccount.id)
        if firm_id is not None:
            if not (firm_admin_of(user, firm_id) or is_platform_admin(user)):
                raise ProblemError("not_found", detail="No such firm")
            statement = statement.where(TradingAccount.firm_id == firm_id)
        else:
            statement = statement.where(TradingAccount.owner_id == user.id)
        return list(await self.db.scalars(statement))

    # ---------------------------------------------------------------------------------------------- modes
    async def resolve(
        self,
        user: CurrentUser,
        account: TradingAccount,
        *,
        source: str,
        profile_id: str,
        version: str | None,
        params: dict[str, Any],
        require_effective: bool,
    ) -> ResolvedProfile:
        """Find the profile version ``source``/``profile_id``/``version`` the caller may use on ``account``."""
        merged = {"account_size": account.account_size, **params}
        if source == "builtin":
            profile = load_builtin(profile_id, None)
            if version is not None and version != profile.version:
                raise ProblemError(
                    "profile_not_found", detail=f"built-in {profile_id} is at version {profile.version}, not {version}"
                )
            merged = self._known_params(profile, merged)
            return ResolvedProfile(
                source=source, kind=builtin_kind(profile_id), profile_id=profile_id, version=profile.version,
                params=merged, identity=f"builtin:{profile_id}:{profile.version}", row_id=None, yaml_text=None,
            )  # fmt: skip
        if source == "firm":
            if account.firm_id is None:
                raise ProblemError("unprocessable", detail="This account is not funded by a firm")
            owner_key = f"firm:{account.firm_id}"
        else:
            owner_key = f"user:{user.id}"
        row = await self._version_row(owner_key, profile_id, version, require_effective=require_effective)
        profile = load_profile_text(row.yaml_text)
        merged = self._known_params(profile, merged)
        return ResolvedProfile(
            source=source, kind="firm" if source == "firm" else "personal", profile_id=row.profile_id,
            version=row.version, params=merged, identity=f"row:{row.id}:{row.content_hash}", row_id=row.id,
            yaml_text=row.yaml_text,
        )  # fmt: skip

    @staticmethod
    def _known_params(profile: Profile, params: dict[str, Any]) -> dict[str, Any]:
        # The account size is offered to every profile but only passed to those that declare it.
        return {k: v for k, v in params.items() if k != "account_size" or k in profile.parameters}

    async def _version_row(
        self, owner_key: str, profile_id: str, version: str | None, *, require_effective: bool
    ) -> ComplianceProfile:
        statement = select(ComplianceProfile).where(
            ComplianceProfile.owner_key == owner_key, ComplianceProfile.profile_id == profile_id
        )
        today = dt.datetime.now(dt.UTC).date()
        if version is not None:
            row = await self.db.scalar(statement.where(ComplianceProfile.version == version))
            if row is None:
                raise ProblemError("profile_not_found", detail=f"No version {version} of {profile_id}")
            if require_effective and row.effective_from > today:
                raise ProblemError(
                    "profile_not_effective",
                    detail=f"{profile_id} {version} is effective from {row.effective_from}",
                    extra={"effective_from": row.effective_from.isoformat()},
                )
            return row
        row = await self.db.scalar(
            statement.where(ComplianceProfile.effective_from <= today)
            .order_by(ComplianceProfile.effective_from.desc(), ComplianceProfile.created_at.desc())
            .limit(1)
        )
        if row is None:
            raise ProblemError("profile_not_found", detail=f"No version of {profile_id} is in effect")
        found: ComplianceProfile = row
        return found

    def engine_for(self, resolved: ResolvedProfile) -> Engine:
        """The compiled engine of a resolved profile (cached)."""
        return self.engines.get(resolved.identity, resolved.params, resolved.load)

    async def current_mode(self, account: TradingAccount) -> ResolvedProfile | None:
        """The account's mode as stored (None without one)."""
        if account.mode_profile_id is None or account.mode_source is None or account.mode_version is None:
            return None
        yaml_text = None
        params = dict(account.mode_params or {})
        identity = f"builtin:{account.mode_profile_id}:{account.mode_version}"
        if account.mode_profile_row is not None:
            # A version in use never changes, so its id identifies the compiled engine; the YAML is read
            # only when the engine is not cached yet (the hot path of every check does no profile query).
            identity = f"row:{account.mode_profile_row}"
            if self.engines.peek(identity, params) is None:
                row = await self.db.get(ComplianceProfile, account.mode_profile_row)
                if row is None:  # pragma: no cover - the foreign key is RESTRICT
                    raise ProblemError("profile_not_found", detail="The account's profile version is gone")
                yaml_text = row.yaml_text
        return ResolvedProfile(
            source=account.mode_source, kind=account.mode_kind or "", profile_id=account.mode_profile_id,
            version=account.mode_version, params=params, identity=identity,
            row_id=account.mode_profile_row, yaml_text=yaml_text,
        )  # fmt: skip

    def check_mode_permission(self, user: CurrentUser, account: TradingAccount, source: str) -> None:
        """Enforce who may switch this account's mode to a profile from ``source``."""
        if account.firm_id is not None:
            if not firm_admin_of(user, account.firm_id):
                raise ProblemError(
                    "mode_forbidden", detail="Only the funding firm's admins change a firm account's mode"
                )
            if source == "personal":
                raise ProblemError("mode_forbidden", detail="A firm account runs a firm or shipped profile")
            return
        if account.owner_id != user.id:
            raise ProblemError("mode_forbidden", detail="Only the owner chooses the mode of their own account")
        if source == "firm":
            raise ProblemError("mode_forbidden", detail="Firm profiles apply only to accounts the firm funds")

    def mode_kind(self, account: TradingAccount, resolved: ResolvedProfile) -> str:
        """``firm`` on a funded account, else ``regulatory`` or ``personal``."""
        if account.firm_id is not None:
            return "firm"
        return "regulatory" if resolved.kind == "regulatory" else "personal"

    async def history(self, account: TradingAccount) -> list[ModeChange]:
        """Every mode change of the account, oldest first."""
        rows = await self.db.scalars(
            select(ModeChange).where(ModeChange.account_id == account.id).order_by(ModeChange.changed_at, ModeChange.id)
        )
        return list(rows)

    # ------------------------------------------------------------------------------------------- profiles
    async def upload_profile(self, user: CurrentUser, owner_key: str, scope: str, yaml_text: str) -> ComplianceProfile:
        """Validate and store a profile version; idempotent for identical text; 409 if a used version changes."""
        # `extends` may name a shipped profile (the loader resolves those); firm profiles do not extend each other.
        profile = load_profile_text(yaml_text)
        digest = hashlib.sha256(yaml_text.encode("utf-8")).hexdigest()
        firm_id = UUID(owner_key.split(":", 1)[1]) if scope == "firm" else None
        existing = await self.db.scalar(
            select(ComplianceProfile).where(
                ComplianceProfile.owner_key == owner_key,
                ComplianceProfile.profile_id == profile.id,
                ComplianceProfile.version == profile.version,
            )
        )
        now = dt.datetime.now(dt.UTC)
        if existing is not None:
            if existing.content_hash == digest:
                return existing
            if existing.first_used_at is not None:
                raise ProblemError(
                    "profile_version_immutable",
                    detail=f"{profile.id} {profile.version} is in use since {existing.first_used_at.isoformat()}",
                )
            existing.yaml_text, existing.content_hash = yaml_text, digest
            existing.title, existing.effective_from, existing.created_at = profile.title, profile.effective_from, now
            row = existing
        else:
            row = ComplianceProfile(
                id=uuid.uuid4(), owner_key=owner_key, scope=scope, firm_id=firm_id,
                owner_id=user.id if scope == "personal" else None, profile_id=profile.id, version=profile.version,
                title=profile.title, effective_from=profile.effective_from, yaml_text=yaml_text,
                content_hash=digest, created_by=user.id, created_at=now,
            )  # fmt: skip
            self.db.add(row)
        await self.audit.append(
            self.db,
            AuditEntry(
                kind="profile_published", chain_id=owner_key, profile_id=profile.id,
                profile_version=profile.version, profile_hash=digest, actor=str(user.id),
                details={"effective_from": profile.effective_from.isoformat(), "scope": scope},
            ),
            now=now,
        )  # fmt: skip
        try:
            await self.db.commit()
        except IntegrityError:
            await self.db.rollback()
            raise ProblemError("conflict", detail="The same version was uploaded concurrently; retry") from None
        return row

    async def list_profiles(self, owner_key: str) -> list[ComplianceProfile]:
        """Every stored version of an owner, by profile id then effective date."""
        rows = await self.db.scalars(
            select(ComplianceProfile)
            .where(ComplianceProfile.owner_key == owner_key)
            .order_by(ComplianceProfile.profile_id, ComplianceProfile.effective_from, ComplianceProfile.version)
        )
        return list(rows)

    async def get_profile(self, owner_key: str, profile_id: str, version: str) -> ComplianceProfile:
        """One stored version (404 if absent)."""
        row = await self.db.scalar(
            select(ComplianceProfile).where(
                ComplianceProfile.owner_key == owner_key,
                ComplianceProfile.profile_id == profile_id,
                ComplianceProfile.version == version,
            )
        )
        if row is None:
            raise ProblemError("profile_not_found", detail=f"No version {version} of {profile_id}")
        return row

    async def delete_profile(self, owner_key: str, profile_id: str, version: str) -> None:
        """Delete an unused version (409 once an account used it)."""
        row = await self.get_profile(owner_key, profile_id, version)
        if row.first_used_at is not None:
            raise ProblemError("profile_version_immutable", detail=f"{profile_id} {version} is in use")
        await self.db.delete(row)
        await self.db.commit()

    @staticmethod
    def account_chain(account: TradingAccount) -> str:
        """The audit chain of ``account``."""
        return account_chain(account.id)
