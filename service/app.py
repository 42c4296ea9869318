"""The Litestar application factory.

``create_app(settings)`` wires configuration, the database (advanced-alchemy), JWT authentication, the
problem+json error handlers, JSON logging with request ids, a per-IP flood guard, OpenAPI (``/schema``) and
every area's controllers. Areas add their controllers to :data:`ROUTE_HANDLERS` and their startup work to
:func:`_lifespan`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.extensions.litestar import (
    AsyncSessionConfig,
    SQLAlchemyAsyncConfig,
    SQLAlchemyPlugin,
)
from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.stores.memory import MemoryStore

from service.accounts.controllers import AdminController, AuthController, MeController
from service.compliance.controllers import TradingAccountController
from service.compliance.profile_controllers import (
    BuiltinProfileController,
    FirmComplianceController,
    PersonalProfileController,
)
from service.compliance.scheduler import compliance_lifespan
from service.db.engine import create_engine
from service.logging import RequestContextMiddleware, configure_logging
from service.marketplace.controllers import MarketplaceController, ModerationController
from service.marketplace.runtime import marketplace_lifespan
from service.onboarding.controllers import OnboardingAdminController, OnboardingController
from service.problems import exception_handlers
from service.security.passwords import PasswordService
from service.security.tokens import PUBLIC_PATHS, build_jwt_auth
from service.settings import Settings
from service.sync.controllers import PaperQuoteController, SignalCancelController, SyncController
from service.system.controllers import health, problem_type, ready
from service.system.openapi import DecimalSchemaPlugin, ProblemAwareJsonRenderPlugin
from service.twofactor.controllers import ContactController, MfaLoginController, TwoFactorController

__all__ = ["ROUTE_HANDLERS", "create_app"]

ROUTE_HANDLERS: list[Any] = [
    health,
    ready,
    problem_type,
    AuthController,
    MeController,
    AdminController,
    MfaLoginController,
    TwoFactorController,
    ContactController,
    MarketplaceController,
    ModerationController,
    TradingAccountController,
    FirmComplianceController,
    PersonalProfileController,
    BuiltinProfileController,
    OnboardingController,
    OnboardingAdminController,
    SyncController,
    SignalCancelController,
    PaperQuoteController,
]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service for ``settings`` (read from the environment when omitted)."""
    from signalos_core import __version__

    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    engine = create_engine(settings.database_url)
    alchemy = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        before_send_handler="autocommit",
        session_config=AsyncSessionConfig(expire_on_commit=False),
        create_all=False,
    )
    jwt_auth = build_jwt_auth(settings)

    @asynccontextmanager
    async def _lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = alchemy.create_session_maker()
        app.state.jwt_auth = jwt_auth
        app.state.passwords = PasswordService(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        try:
            yield
        finally:
            await engine.dispose()

    middleware: list[Any] = [RequestContextMiddleware]
    if settings.rate_limit_per_minute > 0:
        middleware.append(
            RateLimitConfig(
                rate_limit=("minute", settings.rate_limit_per_minute),
                exclude=["^/health$", "^/ready$", "^/schema"],
                store="rate_limit",
            ).middleware
        )
    return Litestar(
        route_handlers=list(ROUTE_HANDLERS),
        plugins=[SQLAlchemyPlugin(config=alchemy), DecimalSchemaPlugin()],
        on_app_init=[jwt_auth.on_app_init],
        middleware=middleware,
        exception_handlers=exception_handlers,
        lifespan=[_lifespan, compliance_lifespan, marketplace_lifespan],
        stores={"rate_limit": MemoryStore()},
        cors_config=CORSConfig(allow_origins=[]),
        openapi_config=OpenAPIConfig(
            title="SignalOS Core API",
            version=__version__,
            description="Compliance, sync, plugins, onboarding and accounts for the SignalOS trade-signal copier. "
            "Errors are RFC 9457 problem+json; see GET /problems/{code}.",
            render_plugins=[
                ScalarRenderPlugin(),
                SwaggerRenderPlugin(path="/swagger"),
                # /schema/openapi.json documents problem+json errors and which operations are public.
                ProblemAwareJsonRenderPlugin(public_paths=PUBLIC_PATHS),
            ],
        ),
        # Logging is configured by service.logging (JSON); Litestar's default text config would override it.
        logging_config=None,
        debug=False,
    )
