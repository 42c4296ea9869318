"""Marketplace logic on top of publishing (:mod:`service.marketplace.publishing`): discovery, ratings, installs
and their lifecycle in the plugin host's sandboxes.

Library errors become problems with stable codes (:mod:`service.marketplace.problems`): an impossible
lifecycle step is ``invalid_plugin_state`` and a sandboxed failure ``plugin_failed`` (with the sandbox's reason:
timeout, crashed, memory, self_test_failed...); updates that fail are rolled back to the previous version.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import Select, func, or_, select, update

from service.accounts.models import Role
from service.compliance.models import TradingAccount
from service.marketplace.models import Install, Plugin, PluginVersion, Publisher, Rating
from service.marketplace.problems import library_problem
from service.marketplace.publishing import PublishingService, utc_now
from service.problems import ProblemError
from service.security.tokens import CurrentUser
from signalos_core import PluginError, __version__
from signalos_core.plugins import InstallRecord, host_compatible, parse_manifest, parse_version

__all__ = ["MarketplaceService"]

T = TypeVar("T")


class MarketplaceService(PublishingService):
    """Everything the marketplace controllers do: publishing and moderation (inherited), discovery, ratings and
    installs, over one database session and the app's plugin host."""

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
        now = utc_now()
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
            raise library_problem(exc) from None

    @staticmethod
    def _apply(row: Install, record: InstallRecord) -> Install:
        row.version, row.previous_version, row.state = record.version, record.previous_version, record.state
        row.reason, row.crash_count, row.updated_at = record.reason, record.crash_count, utc_now()
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
                created_at=utc_now(),
                updated_at=utc_now(),
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
