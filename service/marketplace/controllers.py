"""Marketplace endpoints: publish, discover, rate, install and run plugins, and moderate."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from service.marketplace.models import Install, PluginVersion, PublisherKey
from service.marketplace.schemas import (
    CallIn,
    CallOut,
    InstallIn,
    InstallOut,
    KeyIn,
    KeyOut,
    ModerationIn,
    PluginDetailOut,
    PluginSummaryOut,
    PublisherIn,
    PublisherOut,
    PublishOut,
    RatingIn,
    RatingOut,
    UpdateIn,
    VersionOut,
)
from service.marketplace.services import MarketplaceService
from service.problems import ProblemError
from service.security.guards import TRADING_GUARDS, current_user, platform_admin_only
from signalos_core import __version__
from signalos_core.plugins import host_compatible, parse_manifest

__all__ = ["MarketplaceController", "ModerationController"]

MAX_PACKAGE_BYTES = 16 * 1024 * 1024
#: The largest search offset: a 64-bit signed integer in both databases (larger is a 400 naming ``offset``).
MAX_OFFSET = 2**63 - 1


async def provide_marketplace(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> MarketplaceService:
    """Dependency: the marketplace service on the request's session and the app's plugin host."""
    return MarketplaceService(db_session, request.app.state.plugin_host)


def _install_out(row: Install) -> InstallOut:
    return InstallOut(
        id=row.id,
        plugin_id=row.plugin_id,
        account_id=row.account_id,
        version=row.version,
        previous_version=row.previous_version,
        state=row.state,
        reason=row.reason,
        crash_count=row.crash_count,
        updated_at=row.updated_at,  # type: ignore[arg-type]
    )


def _version_out(row: PluginVersion) -> VersionOut:
    manifest = parse_manifest(row.manifest)
    return VersionOut(
        version=row.version,
        digest=row.digest,
        key_id=row.key_id,
        host_range=row.host_range,
        compatible=host_compatible(manifest, __version__),
        permissions=row.manifest.get("permissions", {}),
        yanked=row.yanked,
        yanked_reason=row.yanked_reason,
        created_at=row.created_at,
    )


def _key_out(key: PublisherKey, publisher: str) -> KeyOut:
    return KeyOut(
        key_id=key.key_id,
        publisher=publisher,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        revoked_reason=key.revoked_reason,
    )


class MarketplaceController(Controller):
    """Publishers, plugins, versions, ratings and installs (every call needs a login, aal2 when required)."""

    path = "/api/marketplace"
    tags = ["marketplace"]
    guards = TRADING_GUARDS
    dependencies = {"marketplace": Provide(provide_marketplace)}

    @post("/publishers", summary="Register a publisher")
    async def create_publisher(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        data: JSONBody[PublisherIn],
    ) -> PublisherOut:
        """Create a publisher owned by the caller; a platform admin verifies it."""
        publisher = await marketplace.create_publisher(current_user(request), data.name, data.display_name)
        return PublisherOut(
            id=publisher.id, name=publisher.name, display_name=publisher.display_name, verified=publisher.verified
        )

    @post("/publishers/{name:str}/keys", summary="Add a signing key")
    async def add_key(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        name: FromPath[str],
        data: JSONBody[KeyIn],
    ) -> KeyOut:
        """Bind an Ed25519 public key to the caller's publisher."""
        key, publisher = await marketplace.add_key(current_user(request), name, data.public_key)
        return _key_out(key, publisher)

    @get("/publishers/{name:str}/keys", summary="List a publisher's keys")
    async def list_keys(self, marketplace: NamedDependency[MarketplaceService], name: FromPath[str]) -> list[KeyOut]:
        """Every key of a publisher with its revocation status (public: keys are public)."""
        return [_key_out(key, name) for key in await marketplace.list_keys(name)]

    @post(
        "/versions",
        summary="Publish a plugin version",
        description="Body: the signed package archive (`signalos plugin pack` + `sign`) as application/octet-stream. "
        "It is verified on upload (signature by a key of the manifest's publisher, file list, manifest) and stored.",
    )
    async def publish(
        self, marketplace: NamedDependency[MarketplaceService], request: Request[Any, Any, Any]
    ) -> PublishOut:
        """Publish a new version of a plugin owned by the caller's publisher."""
        body = await request.body()
        if not body:
            raise ProblemError(
                "validation_error",
                extra={"errors": [{"field": "body", "message": "the signed package bytes are required"}]},
            )
        if len(body) > MAX_PACKAGE_BYTES:
            raise ProblemError("package_rejected", detail="package too large", extra={"reason": "too_large"})
        version = await marketplace.publish(current_user(request), body)
        return PublishOut(
            plugin_id=version.plugin_id, version=version.version, digest=version.digest, key_id=version.key_id
        )

    @get("/plugins", summary="Search plugins")
    async def search(
        self,
        marketplace: NamedDependency[MarketplaceService],
        q: Annotated[str | None, QueryParameter(max_length=100, description="Text in id, name or description")] = None,
        kind: Annotated[Literal["parser", "strategy", "provider"] | None, QueryParameter()] = None,
        compatible: Annotated[
            bool, QueryParameter(description="Only plugins installable on this host version")
        ] = False,
        sort: Annotated[Literal["rating", "installs", "updated"], QueryParameter()] = "rating",
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        offset: Annotated[
            # The database pages (a 64-bit OFFSET); Litestar documents bounds as floats, and float(2**63 - 1)
            # rounds up to 2**63, so the maximum is stated exactly.
            int, QueryParameter(ge=0, le=MAX_OFFSET, schema_extra={"maximum": MAX_OFFSET})
        ] = 0,
    ) -> list[PluginSummaryOut]:
        """Listed plugins, filtered and sorted."""
        rows = await marketplace.search(
            text=q, kind=kind, compatible_only=compatible, sort=sort, limit=limit, offset=offset
        )
        return [
            PluginSummaryOut(
                plugin_id=r["plugin"].plugin_id,
                name=r["plugin"].name,
                kind=r["plugin"].kind,
                publisher=r["publisher"],
                publisher_verified=r["verified"],
                description=r["plugin"].description,
                latest_version=r["plugin"].latest_version,
                rating=r["rating"],
                rating_count=r["rating_count"],
                installs=r["plugin"].install_count,
                updated_at=r["plugin"].last_published_at,
            )
            for r in rows
        ]

    @get("/plugins/{plugin_id:str}", summary="Plugin detail")
    async def detail(
        self, marketplace: NamedDependency[MarketplaceService], plugin_id: FromPath[str]
    ) -> PluginDetailOut:
        """A plugin with every version, its declared permissions and compatibility, ratings and counts."""
        info = await marketplace.detail(plugin_id)
        plugin, publisher = info["plugin"], info["publisher"]
        return PluginDetailOut(
            plugin_id=plugin.plugin_id,
            name=plugin.name,
            kind=plugin.kind,
            publisher=publisher.name,
            publisher_verified=publisher.verified,
            description=plugin.description,
            homepage=plugin.homepage,
            delisted=plugin.delisted,
            installs=plugin.install_count,
            downloads=plugin.download_count,
            rating=info["rating"],
            rating_count=len(info["ratings"]),
            versions=[_version_out(v) for v in info["versions"]],
            reviews=[
                RatingOut(stars=r.stars, review=r.review, version=r.version, updated_at=r.updated_at)
                for r in info["ratings"]
            ],
        )

    @get(
        "/plugins/{plugin_id:str}/versions/{version:str}/artifact",
        summary="Download a version's signed package",
        media_type="application/octet-stream",
    )
    async def artifact(
        self, marketplace: NamedDependency[MarketplaceService], plugin_id: FromPath[str], version: FromPath[str]
    ) -> Response[bytes]:
        """The signed archive, for clients that run plugins locally (they verify it themselves)."""
        return Response(await marketplace.artifact(plugin_id, version), media_type="application/octet-stream")

    @put("/plugins/{plugin_id:str}/rating", summary="Rate and review a plugin")
    async def rate(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        plugin_id: FromPath[str],
        data: JSONBody[RatingIn],
    ) -> RatingOut:
        """One rating per user per plugin, only after installing it; tagged with the installed version."""
        rating = await marketplace.rate(current_user(request), plugin_id, data.stars, data.review)
        return RatingOut(stars=rating.stars, review=rating.review, version=rating.version, updated_at=rating.updated_at)

    @post("/installs", summary="Install a plugin on a trading account")
    async def install(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        data: JSONBody[InstallIn],
    ) -> InstallOut:
        """Verify and install (state `verified`); activate it to start it in its sandbox."""
        row = await marketplace.install(current_user(request), data.plugin_id, data.account_id, data.version, data.pin)
        return _install_out(row)

    @get("/installs", summary="My installs")
    async def installs(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        account_id: Annotated[UUID | None, QueryParameter()] = None,
    ) -> list[InstallOut]:
        """The caller's installs, optionally for one trading account."""
        return [_install_out(r) for r in await marketplace.installs(current_user(request), account_id)]

    @get("/installs/{install_id:uuid}", summary="One install")
    async def get_install(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        install_id: FromPath[UUID],
    ) -> InstallOut:
        """An install with its state and, after a failure, the reason (e.g. why it was quarantined)."""
        return _install_out(await marketplace.owned_install(current_user(request), install_id))

    @post("/installs/{install_id:uuid}/{action:str}", status_code=HTTP_200_OK, summary="Activate, deactivate or remove")
    async def lifecycle(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        install_id: FromPath[UUID],
        action: FromPath[Literal["activate", "deactivate", "remove"]],
    ) -> InstallOut:
        """`activate` starts the sandboxed worker and runs the self-test; `deactivate` stops it; `remove` deletes the install."""
        row = await marketplace.owned_install(current_user(request), install_id)
        return _install_out(await marketplace.transition(row, action))

    @post("/installs/{install_id:uuid}/update", status_code=HTTP_200_OK, summary="Update to another version")
    async def update(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        install_id: FromPath[UUID],
        data: JSONBody[UpdateIn],
    ) -> InstallOut:
        """Update with automatic rollback: if the new version fails to start or its self-test, the old one stays."""
        row = await marketplace.owned_install(current_user(request), install_id)
        return _install_out(await marketplace.update(row, data.version, data.pin))

    @post("/installs/{install_id:uuid}/call", status_code=HTTP_200_OK, summary="Call a plugin in its sandbox")
    async def call(
        self,
        marketplace: NamedDependency[MarketplaceService],
        request: Request[Any, Any, Any],
        install_id: FromPath[UUID],
        data: JSONBody[CallIn],
    ) -> CallOut:
        """Run one method of an active plugin in its sandboxed worker; failures are contained and reported."""
        row = await marketplace.owned_install(current_user(request), install_id)
        return CallOut(result=await marketplace.call(row, data.method, data.payload))


class ModerationController(Controller):
    """Platform-admin moderation: verify publishers, yank versions, delist plugins, revoke keys."""

    path = "/api/marketplace/moderation"
    tags = ["marketplace"]
    guards = [*TRADING_GUARDS, platform_admin_only]
    dependencies = {"marketplace": Provide(provide_marketplace)}

    @post("/publishers/{name:str}/verify", status_code=HTTP_200_OK, summary="Verify a publisher")
    async def verify(self, marketplace: NamedDependency[MarketplaceService], name: FromPath[str]) -> PublisherOut:
        """Mark a publisher verified."""
        publisher = await marketplace.set_verified(name, True)
        return PublisherOut(id=publisher.id, name=publisher.name, display_name=publisher.display_name, verified=True)

    @post("/plugins/{plugin_id:str}/versions/{version:str}/yank", status_code=HTTP_200_OK, summary="Yank a version")
    async def yank(
        self,
        marketplace: NamedDependency[MarketplaceService],
        plugin_id: FromPath[str],
        version: FromPath[str],
        data: JSONBody[ModerationIn],
    ) -> VersionOut:
        """A yanked version can no longer be installed."""
        return _version_out(await marketplace.yank(plugin_id, version, data.reason))

    @post("/plugins/{plugin_id:str}/delist", status_code=HTTP_200_OK, summary="Delist a plugin")
    async def delist(
        self, marketplace: NamedDependency[MarketplaceService], plugin_id: FromPath[str], data: JSONBody[ModerationIn]
    ) -> dict[str, Any]:
        """Hide a plugin from search and refuse new installs."""
        plugin = await marketplace.delist(plugin_id, data.reason)
        return {"plugin_id": plugin.plugin_id, "delisted": True, "reason": plugin.delisted_reason}

    @post("/keys/{key_id:str}/revoke", status_code=HTTP_200_OK, summary="Revoke a publisher key")
    async def revoke(
        self, marketplace: NamedDependency[MarketplaceService], key_id: FromPath[str], data: JSONBody[ModerationIn]
    ) -> dict[str, Any]:
        """Revoke a key: its packages stop verifying, installing and starting everywhere."""
        key = await marketplace.revoke_key(key_id, data.reason)
        return {"key_id": key.key_id, "revoked_at": key.revoked_at, "revoked_reason": key.revoked_reason}
