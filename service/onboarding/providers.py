"""Provider plugins as connection testers: the marketplace's active installs, called through the sandbox.

A ``provider_plugin`` signal source names a plugin id. The caller must have that provider installed and active
(on any of their trading accounts) through the marketplace; the test then calls the plugin's
``test_connection(config)`` in its sandboxed worker, exactly as the marketplace runs any plugin call, and the
reply is validated against the plugin contract's ``ConnectionDiagnosis`` before anyone sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.security.tokens import CurrentUser
from signalos_core.plugins import ConnectionDiagnosis, ConnectionStatus

__all__ = ["MarketplaceProvider", "marketplace_providers"]


@attrs.frozen
class MarketplaceProvider:
    """``test_connection`` of one provider plugin, for one user, through the marketplace's plugin host."""

    db: AsyncSession
    host: Any
    user: CurrentUser
    plugin_id: str

    async def test_connection(self, config: Mapping[str, Any]) -> ConnectionDiagnosis:
        """Run the plugin's own diagnosis; a plugin that is not active for the user is an ``error``."""
        from service.marketplace.models import Install
        from service.marketplace.services import MarketplaceService

        row = await self.db.scalar(
            select(Install)
            .where(Install.user_id == self.user.id, Install.plugin_id == self.plugin_id, Install.state == "active")
            .order_by(Install.updated_at.desc())
            .limit(1)
        )
        if row is None:
            return ConnectionDiagnosis(
                status=ConnectionStatus.ERROR,
                hint="Install and activate the provider plugin first (Marketplace), then test again.",
                detail=f"provider plugin {self.plugin_id!r} is not installed and active for you",
            )
        reply = await MarketplaceService(self.db, self.host).call(row, "test_connection", dict(config))
        # Untrusted plugin output: strict contract conversion (unknown fields and wrong types are refused).
        return msgspec.convert(reply, ConnectionDiagnosis, strict=False)


def marketplace_providers(app_state: Any) -> Any:
    """The runtime's ``providers`` factory: a lookup per request, or None when the marketplace is not running."""

    def factory(user: CurrentUser, db: AsyncSession) -> Any:
        host = getattr(app_state, "plugin_host", None)
        if host is None:
            return None
        return lambda plugin_id: MarketplaceProvider(db, host, user, plugin_id)

    return factory
