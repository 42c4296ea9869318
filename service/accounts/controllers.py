"""HTTP endpoints of the accounts area: auth, the caller's sessions and events, firms and roles."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.security.jwt import JWTAuth
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.schemas import (
    AuthEventOut,
    ChangePasswordIn,
    FirmIn,
    FirmOut,
    LoginIn,
    RefreshIn,
    RegisterIn,
    RevokedCount,
    RoleIn,
    SessionOut,
    TokenPair,
    UserOut,
)
from service.accounts.services import AccountService, ClientInfo, NewSession
from service.accounts.verification import EmailVerification
from service.security.guards import authenticated, current_user, platform_admin_only
from service.security.tokens import AccessToken, CurrentUser, issue_access_token
from service.settings import Settings
from service.twofactor.pending import mfa_flood_guard
from service.twofactor.schemas import CodeIn, CodeSentOut, MfaChallengeOut
from service.twofactor.services import SecondFactor, TwoFactorService, provide_twofactor_service

__all__ = ["AdminController", "AuthController", "MeController", "client_info", "provide_account_service", "token_pair"]


def client_info(request: Request[Any, Any, Any]) -> ClientInfo:
    """IP and user agent of the request (the socket peer: proxies are the deployment's business)."""
    return ClientInfo(ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent"))


async def provide_account_service(
    db_session: NamedDependency[AsyncSession], request: Request[Any, Any, Any]
) -> AccountService:
    """Dependency: the account service on the request's database session."""
    return AccountService(db_session, request.app.state.settings, request.app.state.passwords)


def token_pair(request: Request[Any, Any, Any], new: NewSession) -> TokenPair:
    """Encode the access token of ``new`` and pair it with its refresh token."""
    settings: Settings = request.app.state.settings
    auth: JWTAuth[CurrentUser, AccessToken] = request.app.state.jwt_auth
    return TokenPair(
        access_token=issue_access_token(auth, settings, new.user.id, new.claims),
        refresh_token=new.refresh_token,
        expires_in=int(settings.access_token_ttl.total_seconds()),
        session_id=new.claims.sid,
    )


def _user_out(user: Any) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        role=user.role,
        firm_id=user.firm_id,
        display_name=user.display_name,
        created_at=user.created_at,
        email_verified=user.email_verified_at is not None,
    )


class AuthController(Controller):
    """Registration, login, token refresh, logout and password change."""

    path = "/api/auth"
    tags = ["auth"]
    dependencies = {"accounts": Provide(provide_account_service), "twofactor": Provide(provide_twofactor_service)}

    @post("/register", summary="Register a trader account", description="Public.")
    async def register(self, accounts: NamedDependency[AccountService], data: JSONBody[RegisterIn]) -> UserOut:
        """Create a trader; the email must be unused and the password 12-256 characters."""
        return _user_out(await accounts.register(data.email, data.password, data.display_name))

    @post("/login", status_code=HTTP_200_OK, summary="Log in with email and password", description="Public.")
    async def login(
        self,
        accounts: NamedDependency[AccountService],
        twofactor: NamedDependency[TwoFactorService],
        request: Request[Any, Any, Any],
        data: JSONBody[LoginIn],
    ) -> TokenPair | MfaChallengeOut:
        """Exchange credentials for an access and a refresh token. Errors never say which part was wrong.

        A user with two-factor authentication gets ``mfa_required: true`` and a short-lived ``mfa_token``
        instead, to finish at POST /api/auth/2fa/verify.
        """
        client = client_info(request)
        user = await accounts.authenticate(data.email, data.password, client)
        if await twofactor.enrolled(user.id):
            challenge = await twofactor.begin_login(user, client, data.device)
            return MfaChallengeOut(
                mfa_token=challenge.token, expires_in=challenge.expires_in, methods=challenge.methods
            )
        return token_pair(request, await accounts.start_session(user, client, device=data.device))

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Rotate a refresh token",
        description="Public (the token is the credential).",
    )
    async def refresh(
        self, accounts: NamedDependency[AccountService], request: Request[Any, Any, Any], data: JSONBody[RefreshIn]
    ) -> TokenPair:
        """Return a new token pair; the presented refresh token can never be used again."""
        return token_pair(request, await accounts.refresh(data.refresh_token, client_info(request)))

    @post("/logout", status_code=HTTP_204_NO_CONTENT, guards=[authenticated], summary="Revoke the current session")
    async def logout(self, accounts: NamedDependency[AccountService], request: Request[Any, Any, Any]) -> None:
        """End this session: its access and refresh tokens stop working at once."""
        user = current_user(request)
        await accounts.revoke_session(user.id, user.session_id, client_info(request), reason="logout")

    @post("/password", status_code=HTTP_204_NO_CONTENT, guards=[authenticated], summary="Change password")
    async def change_password(
        self,
        accounts: NamedDependency[AccountService],
        twofactor: NamedDependency[TwoFactorService],
        request: Request[Any, Any, Any],
        data: JSONBody[ChangePasswordIn],
    ) -> None:
        """Change the password (current one required); every other session is revoked.

        With 2FA enabled this also needs a second factor: ``code``/``backup_code`` in the body, or a fresh step-up
        (POST /api/2fa/step-up in the last few minutes).
        """
        user = current_user(request)
        factor = SecondFactor(code=data.code, backup_code=data.backup_code)
        await twofactor.require_step_up(user, client_info(request), factor)
        await accounts.change_password(
            user.id, data.current_password, data.new_password, user.session_id, client_info(request)
        )


class MeController(Controller):
    """The caller's own profile, sessions and security events."""

    path = "/api/me"
    tags = ["me"]
    guards = [authenticated]
    dependencies = {"accounts": Provide(provide_account_service)}

    @get("/", summary="Who am I")
    async def me(self, accounts: NamedDependency[AccountService], request: Request[Any, Any, Any]) -> UserOut:
        """The authenticated user."""
        return _user_out(await accounts.get_user(current_user(request).id))

    @post(
        "/email/verification",
        status_code=HTTP_202_ACCEPTED,
        guards=[mfa_flood_guard],
        dependencies={"twofactor": Provide(provide_twofactor_service)},
        summary="Email me a verification code",
    )
    async def send_email_verification(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any]
    ) -> CodeSentOut:
        """Send a code to my current address; confirm with POST /api/me/email/verify.

        The answer is the same whether or not the address is already verified (then nothing is sent); 429
        ``code_resend_too_soon`` / ``code_quota_exceeded`` as for every emailed code.
        """
        await EmailVerification(twofactor).send(current_user(request), client_info(request))
        settings: Settings = request.app.state.settings
        return CodeSentOut(
            channel="email",
            expires_in=int(settings.otp_ttl.total_seconds()),
            resend_after=int(settings.otp_resend_cooldown.total_seconds()),
        )

    @post(
        "/email/verify",
        status_code=HTTP_200_OK,
        guards=[mfa_flood_guard],
        dependencies={"twofactor": Provide(provide_twofactor_service)},
        summary="Verify my email address",
    )
    async def verify_email(
        self, twofactor: NamedDependency[TwoFactorService], request: Request[Any, Any, Any], data: JSONBody[CodeIn]
    ) -> UserOut:
        """The code from the verification email; a wrong one counts on the second-factor failure counter."""
        return _user_out(
            await EmailVerification(twofactor).verify(current_user(request), client_info(request), data.code)
        )

    @get("/sessions", summary="List my sessions")
    async def sessions(
        self, accounts: NamedDependency[AccountService], request: Request[Any, Any, Any]
    ) -> list[SessionOut]:
        """Live sessions with device, IP, creation and last use; ``current`` marks this one."""
        user = current_user(request)
        return [
            SessionOut(
                id=s.id,
                device=s.device,
                ip=s.ip,
                user_agent=s.user_agent,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                current=s.id == user.session_id,
                aal=s.aal,
            )
            for s in await accounts.list_sessions(user.id)
        ]

    @delete("/sessions/{session_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Revoke one of my sessions")
    async def revoke(
        self, accounts: NamedDependency[AccountService], request: Request[Any, Any, Any], session_id: FromPath[UUID]
    ) -> None:
        """Revoke a session of the caller (404 if it is not theirs)."""
        await accounts.revoke_session(current_user(request).id, session_id, client_info(request), reason="user_revoked")

    @post("/sessions/revoke-others", status_code=HTTP_200_OK, summary="Revoke all my other sessions")
    async def revoke_others(
        self, accounts: NamedDependency[AccountService], request: Request[Any, Any, Any]
    ) -> RevokedCount:
        """Revoke every session of the caller except the current one."""
        user = current_user(request)
        count = await accounts.revoke_other_sessions(
            user.id, user.session_id, client_info(request), reason="user_revoked_others"
        )
        return RevokedCount(revoked=count)

    @get("/events", summary="My security events")
    async def events(
        self,
        accounts: NamedDependency[AccountService],
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        # Bounded: an offset past a 64-bit integer made the database driver raise (a 500, found by the fuzz gate).
        offset: Annotated[int, QueryParameter(ge=0, le=2**31 - 1)] = 0,
    ) -> list[AuthEventOut]:
        """Append-only security events of the caller, newest first."""
        rows = await accounts.list_events(current_user(request).id, limit=limit, offset=offset)
        return [
            AuthEventOut(
                id=e.id,
                event=e.event,
                created_at=e.created_at,
                session_id=e.session_id,
                ip=e.ip,
                user_agent=e.user_agent,
                detail=e.detail,
            )
            for e in rows
        ]


class AdminController(Controller):
    """Platform administration: firms and roles."""

    path = "/api/admin"
    tags = ["admin"]
    guards = [platform_admin_only]
    dependencies = {"accounts": Provide(provide_account_service)}

    @post("/firms", summary="Create a firm")
    async def create_firm(self, accounts: NamedDependency[AccountService], data: JSONBody[FirmIn]) -> FirmOut:
        """Create a firm (platform admins only)."""
        firm = await accounts.create_firm(data.name, data.require_2fa)
        return FirmOut(id=firm.id, name=firm.name, require_2fa=firm.require_2fa)

    @get("/firms", summary="List firms")
    async def list_firms(self, accounts: NamedDependency[AccountService]) -> list[FirmOut]:
        """Every firm (platform admins only)."""
        return [FirmOut(id=f.id, name=f.name, require_2fa=f.require_2fa) for f in await accounts.list_firms()]

    @put("/users/{user_id:uuid}/role", summary="Set a user's role")
    async def set_role(
        self, accounts: NamedDependency[AccountService], user_id: FromPath[UUID], data: JSONBody[RoleIn]
    ) -> UserOut:
        """Make a user a trader, a firm's admin, or a platform admin (platform admins only)."""
        return _user_out(await accounts.set_role(user_id, data.role, data.firm_id))
