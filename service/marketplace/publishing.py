"""The publishing side of the marketplace: publishers, their signing keys and the keyring, verified publishing
of signed packages, and moderation (yanking versions, delisting plugins, revoking keys).

:class:`PublishingService` is the base of :class:`service.marketplace.services.MarketplaceService`, which the
controllers use; library errors become problems as :mod:`service.marketplace.problems` describes.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from service.marketplace.models import Plugin, PluginVersion, Publisher, PublisherKey
from service.marketplace.problems import library_problem
from service.marketplace.runtime import PluginHost
from service.problems import ProblemError
from service.security.tokens import CurrentUser
from signalos_core import PluginError
from signalos_core.plugins import Keyring, key_id_for, parse_version, verify_package
from signalos_core.plugins import PublisherKey as LibraryKey

__all__ = ["PublishingService", "utc_now"]


def utc_now() -> datetime:
    """The current time (UTC, tz-aware)."""
    return datetime.now(UTC)


class PublishingService:
    """Publishers, keys, publishing and moderation, over one database session and the app's plugin host."""

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
            id=uuid.uuid4(), key_id=key_id_for(raw), publisher_id=publisher.id, public_key=raw, created_at=utc_now()
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
            key.revoked_at = utc_now()
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
            raise library_problem(exc) from None
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
        now = utc_now()
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

    # ------------------------------------------------------------------ plugins and moderation
    async def plugin(self, plugin_id: str) -> Plugin:
        """The plugin or 404."""
        plugin = await self.db.scalar(select(Plugin).where(Plugin.plugin_id == plugin_id))
        if plugin is None:
            raise ProblemError("not_found", detail=f"no plugin {plugin_id!r}")
        return plugin

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
