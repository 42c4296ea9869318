"""Marketplace logic: publishing with verification, discovery, ratings, installs and their lifecycle.

Library errors become problems with stable codes: a package that fails verification is
``package_rejected`` (with the library's ``reason``: bad_signature, modified_file, extra_file, revoked_key,
rollback, reserved_id, duplicate_id, ...), an impossible lifecycle step ``invalid_plugin_state``, and a
sandboxed failure ``plugin_failed`` (with the sandbox's reason: timeout, crashed, memory, self_test_failed...).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import Role
from service.compliance.models import TradingAccount
from service.marketplace.models import Install, Plugin, PluginVersion, Publisher, PublisherKey, Rating
from service.marketplace.runtime import PluginHost
from service.problems import ProblemError, register_problem
from service.security.tokens import CurrentUser
from signalos_core import ManifestError, PackageVerificationError, PluginError, SandboxError, __version__
from signalos_core.plugins import (
    InstallRecord,
    Keyring,
    host_compatible,
    key_id_for,
    parse_manifest,
    parse_version,
    verify_package,
)
from signalos_core.plugins import (
    PublisherKey as LibraryKey,
)

__all__ = ["MarketplaceService"]

T = TypeVar("T")

for _code, _status, _title, _description in (
    (
        "package_rejected",
        422,
        "Plugin package rejected",
        "The package failed verification; `reason` says why (bad_signature, modified_file, extra_file, revoked_key, unknown_key, publisher_mismatch, rollback, reserved_id, incompatible_host, ...).",
    ),
    (
        "invalid_manifest",
        422,
        "Invalid plugin manifest",
        "The manifest inside the package is invalid; `issues` lists each problem with its JSON path.",
    ),
    (
        "plugin_id_taken",
        409,
        "Plugin id taken",
        "Another publisher owns this plugin id; ids are owned for ever by their first publisher.",
    ),
    (
        "version_exists",
        409,
        "Version already published",
        "This plugin version exists; publish a new version number instead (versions are immutable).",
    ),
    (
        "invalid_plugin_state",
        409,
        "Not possible in this state",
        "The install's lifecycle does not allow this step now; `state` and `reason` say where it is.",
    ),
    (
        "plugin_failed",
        422,
        "Plugin failed in its sandbox",
        "The plugin failed to start, failed its self-test or a call was contained; `reason` is the sandbox's code. Updates are rolled back automatically.",
    ),
    ("not_installed", 403, "Install required", "Only users who installed a plugin may rate it."),
    (
        "plugin_unavailable",
        409,
        "Plugin unavailable",
        "The plugin is delisted, or no version is installable on this host (all yanked or incompatible).",
    ),
):
    register_problem(_code, _status, _title, _description)


def _now() -> datetime:
    return datetime.now(UTC)


def _library_problem(exc: PluginError) -> ProblemError:
    if isinstance(exc, PackageVerificationError):
        return ProblemError(
            "package_rejected", detail=str(exc), extra={"reason": exc.reason, "plugin_id": exc.plugin_id}
        )
    if isinstance(exc, ManifestError):
        return ProblemError("invalid_manifest", detail=str(exc), extra={"issues": exc.issues})
    if isinstance(exc, SandboxError):
        return ProblemError("plugin_failed", detail=str(exc), extra={"reason": exc.reason, "plugin_id": exc.plugin_id})
    return ProblemError("invalid_plugin_state", detail=str(exc), extra={"state": getattr(exc, "state", None)})


class MarketplaceService:
    """Everything the marketplace controllers do, over one database session and the app's plugin host."""

    def __init__(self, db: AsyncSession, host: PluginHost) -> None:
        self.db = db
        self.host = host

    # ------------------------------------------------------------------ publishers and keys
    async def create_publisher(self, user: CurrentUser, name: str, display_name: str) -> Publisher:
        """Register a publisher owned by the caller (unverified until a platform admin verifies it)."""
        publisher = Publisher(id=uuid.uuid4(), name=name, owner_id=user.id, display_name=display_name)
        self.db.add(publisher)
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise ProblemError("conflict", detail=f"publisher {name!r} exists") from None
        return publisher

    async def publisher(self, name: str) -> Publisher:
        """The publisher called ``name`` or 404."""
        publisher = await self.db.scalar(select(Publisher).where(Publisher.name == name))
        if publisher is None:
            raise ProblemError("not_found", detail=f"no publisher {name!r}")
        return publisher

    async def owned_publisher(self, user: CurrentUser, name: str) -> Publisher:
        """The caller's publisher ``name`` (404 for anyone else's: no ownership oracle)."""
        publisher = await self.publisher(name)
        if publisher.owner_id != user.id:
            raise ProblemError("not_found", detail=f"no publisher {name!r}")
        return publisher

    async def set_verified(self, name: str, verified: bool) -> Publisher:
        """Mark a publisher verified (platform admins)."""
        publisher = await self.publisher(name)
        publisher.verified = verified
        return publisher

    async def add_key(self, user: CurrentUser, name: str, public_key_b64: str) -> tuple[PublisherKey, str]:
        """Bind an Ed25519 public key to the caller's publisher."""
        publisher = await self.owned_publisher(user, name)
        try:
            raw = base64.b64decode(public_key_b64, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ProblemError(
                "validation_error",
                extra={
                    "errors": [{"field": "public_key", "message": "must be base64 of a 32-byte Ed25519 public key"}]
                },
            )
        key = PublisherKey(
            id=uuid.uuid4(), key_id=key_id_for(raw), publisher_id=publisher.id, public_key=raw, created_at=_now()
        )
        self.db.add(key)
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise ProblemError("conflict", detail="this key is already registered") from None
        return key, publisher.name

    async def list_keys(self, name: str) -> list[PublisherKey]:
        """Every key of a publisher, revoked ones included."""
        publisher = await self.publisher(name)
        return list(
            await self.db.scalars(
                select(PublisherKey).where(PublisherKey.publisher_id == publisher.id).order_by(PublisherKey.created_at)
            )
        )

    async def revoke_key(self, key_id: str, reason: str) -> PublisherKey:
        """Revoke a key for good (platform admins): its packages no longer verify, install or start."""
        key = await self.db.scalar(select(PublisherKey).where(PublisherKey.key_id == key_id))
        if key is None:
            raise ProblemError("not_found", detail=f"no key {key_id}")
        if key.revoked_at is None:
            key.revoked_at = _now()
            key.revoked_reason = reason
        return key

    async def keyring(self) -> Keyring:
        """The trusted keys as the library sees them, from the database (revocations included)."""
        rows = await self.db.execute(
            select(PublisherKey, Publisher.name).join(Publisher, Publisher.id == PublisherKey.publisher_id)
        )
        keys = [
            LibraryKey(
                publisher=name,
                public_key=key.public_key,
                revoked_at=key.revoked_at,
                revoked_reason=key.revoked_reason or "",
            )
            for key, name in rows
        ]
        return Keyring(keys)

    # ------------------------------------------------------------------ publishing
    async def publish(self, user: CurrentUser, data: bytes) -> PluginVersion:
        """Verify and store a signed package as a new version of a plugin the caller's publisher owns."""
        try:
            package = verify_package(data, await self.keyring())
        except PluginError as exc:
            raise _library_problem(exc) from None
        manifest = package.manifest
        publisher = await self.owned_publisher(user, manifest.publisher)
        plugin = await self.db.scalar(select(Plugin).where(Plugin.plugin_id == manifest.id))
        if plugin is None:
            if manifest.id in self.host.registry.reserved_ids:
                raise ProblemError(
                    "package_rejected", detail=f"{manifest.id} is a core plugin id", extra={"reason": "reserved_id"}
                )
            plugin = Plugin(
                id=uuid.uuid4(),
                plugin_id=manifest.id,
                publisher_id=publisher.id,
                name=manifest.name,
                kind=str(manifest.kind),
                description=manifest.description,
            )
            self.db.add(plugin)
        elif (
            plugin.publisher_id != publisher.id
        ):  # pragma: no cover - defence in depth: manifests bind ids to their publisher's namespace
            raise ProblemError("plugin_id_taken", detail=f"{manifest.id} belongs to another publisher")
        elif plugin.kind != str(manifest.kind):
            raise ProblemError(
                "invalid_manifest",
                detail=f"{manifest.id} is a {plugin.kind} plugin; a version cannot change its kind",
                extra={"issues": ["$.kind: differs from earlier versions"]},
            )
        if await self.db.scalar(
            select(PluginVersion.id).where(
                PluginVersion.plugin_id == manifest.id, PluginVersion.version == manifest.version
            )
        ):
            raise ProblemError("version_exists", detail=f"{manifest.id} {manifest.version} is already published")
        now = _now()
        plugin.name, plugin.description, plugin.homepage = (
            manifest.name,
            manifest.description,
            manifest.homepage or None,
        )
        plugin.last_published_at = now
        if plugin.latest_version is None or parse_version(manifest.version) > parse_version(plugin.latest_version):
            plugin.latest_version = manifest.version
        await self.db.flush()
        version = PluginVersion(
            id=uuid.uuid4(),
            plugin_id=manifest.id,
            version=manifest.version,
            artifact=data,
            digest=package.digest,
            key_id=package.key_id or "",
            manifest=msgspec.to_builtins(manifest),
            host_range=manifest.host,
            created_at=now,
        )
        self.db.add(version)
        await self.db.flush()
        return version

    # ------------------------------------------------------------------ discovery
    def _rating_stats(self) -> Any:
        return (
            select(Rating.plugin_id, func.avg(Rating.stars).label("avg"), func.count(Rating.id).label("n"))
            .group_by(Rating.plugin_id)
            .subquery()
        )

    async def search(
        self, *, text: str | None, kind: str | None, compatible_only: bool, sort: str, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Listed plugins matching ``text``/``kind``, sorted by rating, installs or recent updates."""
        stats = self._rating_stats()
        query: Select[Any] = (
            select(Plugin, Publisher.name, Publisher.verified, stats.c.avg, stats.c.n)
            .join(Publisher, Publisher.id == Plugin.publisher_id)
            .outerjoin(stats, stats.c.plugin_id == Plugin.plugin_id)
            .where(Plugin.delisted.is_(False))
        )
        if text:
            pattern = f"%{text.lower()}%"
            query = query.where(
                or_(
                    func.lower(Plugin.plugin_id).like(pattern),
                    func.lower(Plugin.name).like(pattern),
                    func.lower(Plugin.description).like(pattern),
                )
            )
        if kind:
            query = query.where(Plugin.kind == kind)
        order = {
            "rating": (func.coalesce(stats.c.avg, 0).desc(), Plugin.install_count.desc()),
            "installs": (Plugin.install_count.desc(), Plugin.plugin_id),
            "updated": (Plugin.last_published_at.desc(), Plugin.plugin_id),
        }[sort]
        query = query.order_by(*order, Plugin.plugin_id)
        if not compatible_only:  # the database pages; compatibility needs the manifests, so it filters first
            query = query.offset(offset).limit(limit)
        rows = list(await self.db.execute(query))
        if compatible_only:
            installable = await self._installable_plugin_ids([row[0].plugin_id for row in rows])
            rows = [row for row in rows if row[0].plugin_id in installable][offset : offset + limit]
        return [
            {
                "plugin": plugin,
                "publisher": publisher,
                "verified": verified,
                "rating": None if avg is None else round(float(avg), 2),
                "rating_count": int(count or 0),
            }
            for plugin, publisher, verified, avg, count in rows
        ]

    async def _installable_plugin_ids(self, plugin_ids: list[str]) -> set[str]:
        """Which of ``plugin_ids`` have a non-yanked version this host can run (one query for all of them)."""
        if not plugin_ids:
            return set()
        versions = await self.db.execute(
            select(PluginVersion.plugin_id, PluginVersion.manifest).where(
                PluginVersion.plugin_id.in_(plugin_ids), PluginVersion.yanked.is_(False)
            )
        )
        installable: set[str] = set()
        for plugin_id, manifest in versions:
            if plugin_id not in installable and host_compatible(parse_manifest(manifest), __version__):
                installable.add(plugin_id)
        return installable

    async def _installable_version(self, plugin_id: str) -> PluginVersion | None:
        versions = await self.db.scalars(
            select(PluginVersion).where(PluginVersion.plugin_id == plugin_id, PluginVersion.yanked.is_(False))
        )
        candidates = [v for v in versions if host_compatible(parse_manifest(v.manifest), __version__)]
        return max(candidates, key=lambda v: parse_version(v.version), default=None)

    async def plugin(self, plugin_id: str) -> Plugin:
        """The plugin or 404."""
        plugin = await self.db.scalar(select(Plugin).where(Plugin.plugin_id == plugin_id))
        if plugin is None:
            raise ProblemError("not_found", detail=f"no plugin {plugin_id!r}")
        return plugin

    async def detail(self, plugin_id: str) -> dict[str, Any]:
        """A plugin with its versions (newest first), permissions, compatibility, ratings and counts."""
        plugin = await self.plugin(plugin_id)
        publisher = await self.db.get(Publisher, plugin.publisher_id)
        versions = sorted(
            await self.db.scalars(select(PluginVersion).where(PluginVersion.plugin_id == plugin_id)),
            key=lambda v: parse_version(v.version),
            reverse=True,
        )
        ratings = list(
            await self.db.scalars(
                select(Rating).where(Rating.plugin_id == plugin_id).order_by(Rating.updated_at.desc())
            )
        )
        average = round(sum(r.stars for r in ratings) / len(ratings), 2) if ratings else None
        return {"plugin": plugin, "publisher": publisher, "versions": versions, "ratings": ratings, "rating": average}

    async def artifact(self, plugin_id: str, version: str) -> bytes:
        """The signed archive of a version (counts a download)."""
        row = await self.db.scalar(
            select(PluginVersion).where(PluginVersion.plugin_id == plugin_id, PluginVersion.version == version)
        )
        if row is None:
            raise ProblemError("not_found", detail=f"no version {version} of {plugin_id}")
        await self.db.execute(
            update(Plugin).where(Plugin.plugin_id == plugin_id).values(download_count=Plugin.download_count + 1)
        )
        return row.artifact

    # ------------------------------------------------------------------ ratings
    async def rate(self, user: CurrentUser, plugin_id: str, stars: int, review: str) -> Rating:
        """Create or replace the caller's rating; only users who installed the plugin may rate it."""
        await self.plugin(plugin_id)
        install = await self.db.scalar(
            select(Install)
            .where(Install.user_id == user.id, Install.plugin_id == plugin_id)
            .order_by(Install.updated_at.desc())
            .limit(1)
        )
        if install is None:
            raise ProblemError("not_installed")
        now = _now()
        rating = await self.db.scalar(select(Rating).where(Rating.user_id == user.id, Rating.plugin_id == plugin_id))
        if rating is None:
            rating = Rating(
                id=uuid.uuid4(),
                user_id=user.id,
                plugin_id=plugin_id,
                stars=stars,
                review=review,
                version=install.version,
                created_at=now,
                updated_at=now,
            )
            self.db.add(rating)
        else:
            rating.stars, rating.review, rating.version, rating.updated_at = stars, review, install.version, now
        await self.db.flush()
        return rating

    # ------------------------------------------------------------------ moderation
    async def yank(self, plugin_id: str, version: str, reason: str) -> PluginVersion:
        """Yank a version: it stays listed for existing installs but can no longer be installed."""
        row = await self.db.scalar(
            select(PluginVersion).where(PluginVersion.plugin_id == plugin_id, PluginVersion.version == version)
        )
        if row is None:
            raise ProblemError("not_found", detail=f"no version {version} of {plugin_id}")
        row.yanked, row.yanked_reason = True, reason
        return row

    async def delist(self, plugin_id: str, reason: str) -> Plugin:
        """Hide a plugin from search and refuse new installs."""
        plugin = await self.plugin(plugin_id)
        plugin.delisted, plugin.delisted_reason = True, reason
        return plugin

    # ------------------------------------------------------------------ installs
    async def _owned_account(self, user: CurrentUser, account_id: UUID) -> TradingAccount:
        account = await self.db.get(TradingAccount, account_id)
        if account is None or account.owner_id != user.id:
            raise ProblemError("not_found", detail="no such trading account")
        return account

    async def _choose_version(self, plugin: Plugin, version: str | None) -> PluginVersion:
        if plugin.delisted:
            raise ProblemError(
                "plugin_unavailable", detail=f"{plugin.plugin_id} was delisted: {plugin.delisted_reason}"
            )
        if version is None:
            chosen = await self._installable_version(plugin.plugin_id)
            if chosen is None:
                raise ProblemError(
                    "plugin_unavailable", detail=f"no installable version of {plugin.plugin_id} for host {__version__}"
                )
            return chosen
        row = await self.db.scalar(
            select(PluginVersion).where(PluginVersion.plugin_id == plugin.plugin_id, PluginVersion.version == version)
        )
        if row is None:
            raise ProblemError("not_found", detail=f"no version {version} of {plugin.plugin_id}")
        if row.yanked:
            raise ProblemError(
                "plugin_unavailable", detail=f"{plugin.plugin_id} {version} was yanked: {row.yanked_reason}"
            )
        return row

    async def _lifecycle(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.host.set_keys(await self.keyring())
        try:
            return await self.host.run(fn, *args, **kwargs)
        except PluginError as exc:
            raise _library_problem(exc) from None

    @staticmethod
    def _apply(row: Install, record: InstallRecord) -> Install:
        row.version, row.previous_version, row.state = record.version, record.previous_version, record.state
        row.reason, row.crash_count, row.updated_at = record.reason, record.crash_count, _now()
        return row

    async def install(
        self, user: CurrentUser, plugin_id: str, account_id: UUID, version: str | None, pin: bool
    ) -> Install:
        """Verify and install a version on one of the caller's accounts (state ``verified``)."""
        await self._owned_account(user, account_id)
        plugin = await self.plugin(plugin_id)
        chosen = await self._choose_version(plugin, version)
        row = await self.db.scalar(
            select(Install).where(Install.account_id == account_id, Install.plugin_id == plugin_id)
        )
        if row is not None and row.state != "removed":
            raise ProblemError(
                "invalid_plugin_state",
                detail=f"{plugin_id} is already installed ({row.state}); update it instead",
                extra={"state": row.state},
            )
        record = await self._lifecycle(
            self.host.registry.install, chosen.artifact, user_id=str(user.id), account_id=str(account_id), pin=pin
        )
        if row is None:
            row = Install(
                id=uuid.uuid4(),
                user_id=user.id,
                account_id=account_id,
                plugin_id=plugin_id,
                version=chosen.version,
                state="installed",
                created_at=_now(),
                updated_at=_now(),
            )
            self.db.add(row)
        await self.db.execute(
            update(Plugin).where(Plugin.plugin_id == plugin_id).values(install_count=Plugin.install_count + 1)
        )
        return self._apply(row, record)

    async def installs(self, user: CurrentUser, account_id: UUID | None) -> list[Install]:
        """The caller's installs (one account or all), removed ones excluded."""
        query = select(Install).where(Install.user_id == user.id, Install.state != "removed")
        if account_id is not None:
            query = query.where(Install.account_id == account_id)
        return list(await self.db.scalars(query.order_by(Install.plugin_id)))

    async def owned_install(self, user: CurrentUser, install_id: UUID) -> Install:
        """One of the caller's installs (404 for anybody else's)."""
        row = await self.db.get(Install, install_id)
        if row is None or (row.user_id != user.id and user.role != Role.PLATFORM_ADMIN.value):
            raise ProblemError("not_found", detail="no such install")
        return row

    async def _artifact_of(self, plugin_id: str, version: str) -> bytes:
        row = await self.db.scalar(
            select(PluginVersion.artifact).where(PluginVersion.plugin_id == plugin_id, PluginVersion.version == version)
        )
        if row is None:  # pragma: no cover - versions are never deleted
            raise ProblemError("not_found", detail=f"no version {version} of {plugin_id}")
        return row

    async def _ensure_local(self, row: Install) -> None:
        artifact = await self._artifact_of(row.plugin_id, row.version)
        await self._lifecycle(
            self.host.ensure_local,
            str(row.user_id),
            str(row.account_id),
            row.plugin_id,
            version=row.version,
            state=row.state if row.state != "removed" else "verified",
            artifact=lambda: artifact,
        )

    async def transition(self, row: Install, action: str) -> Install:
        """Activate, deactivate or remove an install (workers start, with the self-test, on activation)."""
        await self._ensure_local(row)
        method = {
            "activate": self.host.runtime.activate,
            "deactivate": self.host.runtime.deactivate,
            "remove": self.host.runtime.remove,
        }[action]
        record = await self._lifecycle(method, str(row.user_id), str(row.account_id), row.plugin_id)
        return self._apply(row, record)

    async def update(self, row: Install, version: str | None, pin: bool) -> Install:
        """Move to another version; if it fails to start or its self-test, the old one is restored (409 with reason)."""
        plugin = await self.plugin(row.plugin_id)
        chosen = await self._choose_version(plugin, version)
        await self._ensure_local(row)
        try:
            record = await self._lifecycle(
                self.host.runtime.update, str(row.user_id), str(row.account_id), chosen.artifact, pin=pin
            )
        except ProblemError as problem:
            local = self.host.local_record(str(row.user_id), str(row.account_id), row.plugin_id)
            if local is not None:
                self._apply(row, local)
                await self.db.commit()  # keep the rollback's record although the response is an error
            raise problem
        return self._apply(row, record)

    async def call(self, row: Install, method: str, payload: Any) -> Any:
        """Call an active plugin in its sandbox; contained failures count towards quarantine."""
        await self._ensure_local(row)
        try:
            return await self._lifecycle(
                self.host.runtime.call, str(row.user_id), str(row.account_id), row.plugin_id, method, payload
            )
        finally:
            local = self.host.local_record(str(row.user_id), str(row.account_id), row.plugin_id)
            if local is not None:
                self._apply(row, local)
                await self.db.commit()
