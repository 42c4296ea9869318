"""Marketplace tables. Artifacts (signed plugin archives) are stored in the database so every replica has them."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from advanced_alchemy.types.datetime import DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import UUIDAuditBase, UUIDBase

__all__ = ["Install", "Plugin", "PluginVersion", "Publisher", "PublisherKey", "Rating"]


class Publisher(UUIDAuditBase):
    """Who publishes plugins; ``name`` is the ``publisher`` field of their manifests."""

    __tablename__ = "mp_publisher"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    display_name: Mapped[str] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)


class PublisherKey(UUIDBase):
    """An Ed25519 public key bound to one publisher; revocation applies to every version it signed."""

    __tablename__ = "mp_publisher_key"

    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    publisher_id: Mapped[UUID] = mapped_column(ForeignKey("mp_publisher.id", ondelete="CASCADE"))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(64))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(500), default=None)


class Plugin(UUIDAuditBase):
    """A plugin id, owned for ever by the publisher that first published it."""

    __tablename__ = "mp_plugin"

    plugin_id: Mapped[str] = mapped_column(String(128), unique=True)
    publisher_id: Mapped[UUID] = mapped_column(ForeignKey("mp_publisher.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    homepage: Mapped[str | None] = mapped_column(String(500), default=None)
    delisted: Mapped[bool] = mapped_column(Boolean, default=False)
    delisted_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    install_count: Mapped[int] = mapped_column(Integer, default=0)
    download_count: Mapped[int] = mapped_column(Integer, default=0)
    latest_version: Mapped[str | None] = mapped_column(String(64), default=None)
    last_published_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class PluginVersion(UUIDBase):
    """One published version: the signed artifact, its digest and manifest, and whether it was yanked."""

    __tablename__ = "mp_plugin_version"
    __table_args__ = (UniqueConstraint("plugin_id", "version", name="uq_mp_plugin_version"),)

    plugin_id: Mapped[str] = mapped_column(ForeignKey("mp_plugin.plugin_id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JsonB)
    host_range: Mapped[str] = mapped_column(String(100))
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class Rating(UUIDBase):
    """One rating and review per user per plugin, tagged with the version the user had installed."""

    __tablename__ = "mp_rating"
    __table_args__ = (UniqueConstraint("user_id", "plugin_id", name="uq_mp_rating_user_plugin"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    plugin_id: Mapped[str] = mapped_column(ForeignKey("mp_plugin.plugin_id", ondelete="CASCADE"))
    stars: Mapped[int] = mapped_column(Integer)
    review: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class Install(UUIDBase):
    """A plugin installed on one trading account of a user, with its lifecycle state (authoritative here)."""

    __tablename__ = "mp_install"
    __table_args__ = (
        UniqueConstraint("account_id", "plugin_id", name="uq_mp_install_account_plugin"),
        Index("ix_mp_install_user_id", "user_id"),
    )

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    account_id: Mapped[UUID] = mapped_column(ForeignKey("trading_account.id", ondelete="CASCADE"))
    plugin_id: Mapped[str] = mapped_column(ForeignKey("mp_plugin.plugin_id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64), default=None)
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    crash_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
