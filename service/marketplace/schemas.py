"""Request and response bodies of the marketplace."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

__all__ = [
    "CallIn",
    "CallOut",
    "InstallIn",
    "InstallOut",
    "KeyIn",
    "KeyOut",
    "ModerationIn",
    "PluginDetailOut",
    "PluginSummaryOut",
    "PublishOut",
    "PublisherIn",
    "PublisherOut",
    "RatingIn",
    "RatingOut",
    "UpdateIn",
    "VersionOut",
]

PluginId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]{2,127}$", examples=["acme.gold-format"])]
Version = Annotated[str, msgspec.Meta(max_length=64, examples=["1.2.0"])]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of request bodies: unknown fields are errors."""


class PublisherIn(_In):
    """Register as a publisher: ``name`` is what your manifests put in ``publisher``."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$", examples=["acme"])]
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Acme Signals Ltd"])]


class KeyIn(_In):
    """Bind an Ed25519 public key (raw 32 bytes, base64) to your publisher (from `signalos plugin keygen`)."""

    public_key: Annotated[str, msgspec.Meta(min_length=40, max_length=64, examples=["yWk3...base64...="])]


class ModerationIn(_In):
    """Why a moderation action is taken (kept with the record)."""

    reason: Reason


class InstallIn(_In):
    """Install a plugin on one of your trading accounts (latest compatible version unless ``version`` pins one)."""

    plugin_id: PluginId
    account_id: UUID
    version: Version | None = None
    pin: bool = False


class UpdateIn(_In):
    """Move an install to another version (newest compatible when omitted); a lower one needs ``pin``."""

    version: Version | None = None
    pin: bool = False


class CallIn(_In):
    """Call an active plugin in its sandbox: ``method`` of its kind's contract with a JSON payload."""

    method: Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,40}$", examples=["parse"])]
    payload: Any = None


class RatingIn(_In):
    """Rate a plugin you installed (1 to 5 stars) with an optional review."""

    stars: Annotated[int, msgspec.Meta(ge=1, le=5)]
    review: Annotated[str, msgspec.Meta(max_length=4000)] = ""


class PublisherOut(msgspec.Struct, kw_only=True):
    """A publisher."""

    id: UUID
    name: str
    display_name: str
    verified: bool


class KeyOut(msgspec.Struct, kw_only=True):
    """A publisher key."""

    key_id: str
    publisher: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class VersionOut(msgspec.Struct, kw_only=True):
    """One published version with its declared permissions and compatibility."""

    version: str
    digest: str
    key_id: str
    host_range: str
    compatible: bool
    permissions: dict[str, Any]
    yanked: bool
    yanked_reason: str | None
    created_at: datetime


class PluginSummaryOut(msgspec.Struct, kw_only=True):
    """A search result."""

    plugin_id: str
    name: str
    kind: str
    publisher: str
    publisher_verified: bool
    description: str
    latest_version: str | None
    rating: float | None
    rating_count: int
    installs: int
    updated_at: datetime | None


class RatingOut(msgspec.Struct, kw_only=True):
    """A rating and review."""

    stars: int
    review: str
    version: str
    updated_at: datetime


class PluginDetailOut(msgspec.Struct, kw_only=True):
    """A plugin with every version, its permissions, ratings and counts."""

    plugin_id: str
    name: str
    kind: str
    publisher: str
    publisher_verified: bool
    description: str
    homepage: str | None
    delisted: bool
    installs: int
    downloads: int
    rating: float | None
    rating_count: int
    versions: list[VersionOut]
    reviews: list[RatingOut]


class PublishOut(msgspec.Struct, kw_only=True):
    """What was published."""

    plugin_id: str
    version: str
    digest: str
    key_id: str


class InstallOut(msgspec.Struct, kw_only=True):
    """An install and where it is in its lifecycle; ``reason`` says why when something went wrong."""

    id: UUID
    plugin_id: str
    account_id: UUID
    version: str
    previous_version: str | None
    state: Literal["installed", "verified", "active", "inactive", "updating", "quarantined", "removed"]
    reason: str
    crash_count: int
    updated_at: datetime


class CallOut(msgspec.Struct, kw_only=True):
    """A plugin's answer (validated against its kind's contract by the sandbox host)."""

    result: Any
