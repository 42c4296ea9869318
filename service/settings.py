"""Service configuration: one frozen object read from ``SIGNALOS_*`` environment variables.

Every variable is listed in :data:`ENVIRONMENT` with its default and meaning; README.md and
docs/configuration.md render the same table (a test keeps them in step). Secrets have no usable default:
the service refuses to start without them unless ``SIGNALOS_DEV=1`` is set, which substitutes a
well-known development secret and says so in the log.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final

import attrs

from signalos_core import ConfigurationError

__all__ = ["ENVIRONMENT", "EnvVar", "Settings", "environment_table", "update_environment_tables"]

_DEV_JWT_SECRET: Final = "signalos-development-only-jwt-secret-do-not-deploy"  # noqa: S105 - public by design, refused unless SIGNALOS_DEV=1
_DEV_DATA_KEY: Final = base64.urlsafe_b64encode(b"signalos-dev-data-key-32-bytes!!").decode()
_MIN_SECRET_BYTES: Final = 32
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
_SMTP_TLS_MODES: Final = ("starttls", "tls", "none")
_MAX_OTP_TTL: Final = 600


@attrs.frozen
class EnvVar:
    """Documentation of one environment variable."""

    name: str
    default: str
    description: str


ENVIRONMENT: Final[tuple[EnvVar, ...]] = (
    EnvVar(
        "SIGNALOS_DATABASE_URL",
        "(`signalos.db` in SIGNALOS_VAR_DIR)",
        "SQLAlchemy async URL. SQLite (embedded, one replica) or `postgresql+asyncpg://...` (several replicas).",
    ),
    EnvVar("SIGNALOS_HOST", "127.0.0.1", "Interface `signalos serve` binds to."),
    EnvVar("SIGNALOS_PORT", "8000", "TCP port `signalos serve` listens on."),
    EnvVar(
        "SIGNALOS_JWT_SECRET",
        "(none: required)",
        "HS256 signing key for access tokens, at least 32 bytes. Rotating it logs everybody out.",
    ),
    EnvVar(
        "SIGNALOS_DATA_KEY",
        "(none: required)",
        "Data-encryption key(s) for secrets at rest: url-safe base64 of 32 bytes; several keys separated by "
        "commas, newest first (rotation). Alternatively SIGNALOS_DATA_KEY_FILE.",
    ),
    EnvVar("SIGNALOS_DATA_KEY_FILE", "(unset)", "File holding SIGNALOS_DATA_KEY (one key per line, newest first)."),
    EnvVar("SIGNALOS_DEV", "0", "`1` allows the built-in development secrets (never in production)."),
    EnvVar("SIGNALOS_JWT_ISSUER", "signalos", "`iss` claim of issued tokens, checked on every request."),
    EnvVar("SIGNALOS_JWT_AUDIENCE", "signalos-api", "`aud` claim of access tokens, checked on every request."),
    EnvVar("SIGNALOS_ACCESS_TOKEN_TTL", "600", "Access-token lifetime in seconds (5-15 minutes recommended)."),
    EnvVar("SIGNALOS_REFRESH_TOKEN_TTL", "43200", "Refresh-token lifetime in seconds (never beyond the session's)."),
    EnvVar("SIGNALOS_SESSION_ABSOLUTE_TTL", "43200", "A session ends this many seconds after login (NIST AAL2: 12 h)."),
    EnvVar("SIGNALOS_SESSION_IDLE_TTL", "1800", "A session ends after this many idle seconds (NIST AAL2: 30 min)."),
    EnvVar(
        "SIGNALOS_REFRESH_REUSE_GRACE",
        "5",
        "Seconds during which the same client (IP and user agent) presenting a just-rotated refresh token gets a "
        "409 instead of revoking the session (concurrent refresh from one app). 0 disables the grace.",
    ),
    EnvVar("SIGNALOS_MFA_PENDING_TTL", "300", "Lifetime in seconds of the `mfa_pending` token after a password."),
    EnvVar("SIGNALOS_LOGIN_MAX_FAILURES", "5", "Consecutive password failures before the account backs off."),
    EnvVar(
        "SIGNALOS_LOGIN_BACKOFF_BASE",
        "30",
        "First back-off in seconds after too many password failures; doubles per further failure, capped at 1 h.",
    ),
    EnvVar("SIGNALOS_ARGON2_TIME_COST", "3", "argon2id iterations (argon2-cffi default)."),
    EnvVar("SIGNALOS_ARGON2_MEMORY_KIB", "65536", "argon2id memory in KiB (argon2-cffi default: 64 MiB)."),
    EnvVar("SIGNALOS_ARGON2_PARALLELISM", "4", "argon2id lanes."),
    EnvVar("SIGNALOS_RATE_LIMIT_PER_MINUTE", "1200", "Per-IP flood guard over all API requests (0 disables)."),
    EnvVar(
        "SIGNALOS_COMPLIANCE_CLOCK_INTERVAL",
        "30",
        "Seconds between compliance clock ticks (day boundaries, weekend close, close-by times, news windows); "
        "each event is claimed in the database, so every replica may tick. 0 disables the loop.",
    ),
    EnvVar(
        "SIGNALOS_ONBOARDING_ALLOW_PRIVATE_TARGETS",
        "0",
        "`1` lets onboarding connection tests reach private and loopback addresses (off: users cannot probe the "
        "service's own network).",
    ),
    EnvVar("SIGNALOS_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR. Logs are JSON lines on stderr."),
    EnvVar("SIGNALOS_VAR_DIR", "./var", "Directory for local state (SQLite file, outboxes, dev mail outbox)."),
    # Two-factor authentication (service/twofactor, docs/security.md).
    EnvVar("SIGNALOS_TOTP_ISSUER", "SignalOS", "Issuer shown by authenticator apps (the `otpauth://` label prefix)."),
    EnvVar("SIGNALOS_OTP_TTL", "300", "Lifetime in seconds of an emailed or texted code (at most 600)."),
    EnvVar("SIGNALOS_OTP_RESEND_COOLDOWN", "60", "Seconds before another email/SMS code may be requested."),
    EnvVar("SIGNALOS_OTP_HOURLY_CAP", "5", "Email/SMS codes one account may be sent per rolling hour."),
    EnvVar("SIGNALOS_OTP_MAX_ATTEMPTS", "5", "Wrong guesses one emailed/texted code or `mfa_pending` token survives."),
    EnvVar(
        "SIGNALOS_MFA_LOCKOUT_THRESHOLD",
        "5",
        "Consecutive second-factor failures (any method, any endpoint) that lock the account's second factor.",
    ),
    EnvVar(
        "SIGNALOS_MFA_LOCKOUT_SECONDS",
        "300",
        "First second-factor lockout in seconds; doubles with each further failure, capped by "
        "SIGNALOS_MFA_LOCKOUT_MAX_SECONDS.",
    ),
    EnvVar("SIGNALOS_MFA_LOCKOUT_MAX_SECONDS", "3600", "Longest second-factor lockout in seconds."),
    EnvVar(
        "SIGNALOS_MFA_IP_RATE_PER_MINUTE",
        "30",
        "Per-IP flood guard over the second-factor endpoints (requests per minute; 0 disables).",
    ),
    EnvVar("SIGNALOS_STEP_UP_TTL", "300", "Seconds a TOTP/backup-code verification counts as fresh for step-up."),
    EnvVar(
        "SIGNALOS_RECOVERY_TRADING_HOLD",
        "86400",
        "Seconds trading stays blocked after an operator reset 2FA for a user who lost every second factor.",
    ),
    EnvVar(
        "SIGNALOS_OUTBOX_PATH",
        "(unset)",
        "Test/development mode: append every email and SMS (codes included) to this JSONL file instead of "
        "sending it. Never in production.",
    ),
    EnvVar("SIGNALOS_SMTP_HOST", "(unset)", "SMTP server for email codes and security notifications."),
    EnvVar("SIGNALOS_SMTP_PORT", "587", "SMTP port."),
    EnvVar("SIGNALOS_SMTP_USER", "(unset)", "SMTP login (optional)."),
    EnvVar("SIGNALOS_SMTP_PASSWORD", "(unset)", "SMTP password (optional)."),
    EnvVar("SIGNALOS_SMTP_TLS", "starttls", "`starttls`, `tls` (implicit TLS) or `none` (loopback relays only)."),
    EnvVar("SIGNALOS_SMTP_FROM", "SignalOS <no-reply@localhost>", "From address of emails."),
    EnvVar(
        "SIGNALOS_SMS_URL",
        "(unset)",
        "HTTP SMS provider endpoint; receives POST JSON `{to, body}` with the bearer token below.",
    ),
    EnvVar("SIGNALOS_SMS_TOKEN", "(unset)", "Bearer token sent to SIGNALOS_SMS_URL."),
)


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}", field=name) from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be >= {minimum}, got {value}", field=name)
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, got {raw!r}", field=name)
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "0")
    if raw not in ("0", "1"):
        raise ConfigurationError(f"{name} must be 0 or 1, got {raw!r}", field=name)
    return raw == "1"


def _decode_key(name: str, text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{name} must be url-safe base64 of 32 bytes", field=name) from None
    if len(key) != _MIN_SECRET_BYTES:
        raise ConfigurationError(f"{name} must decode to exactly 32 bytes, got {len(key)}", field=name)
    return key


@attrs.frozen(repr=False)
class Settings:
    """The service's whole configuration. Build it with :meth:`from_env`; it never changes afterwards."""

    database_url: str
    jwt_secret: str
    data_keys: tuple[bytes, ...]
    dev_mode: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    jwt_issuer: str = "signalos"
    jwt_audience: str = "signalos-api"
    access_token_ttl: timedelta = timedelta(minutes=10)
    refresh_token_ttl: timedelta = timedelta(hours=12)
    session_absolute_ttl: timedelta = timedelta(hours=12)
    session_idle_ttl: timedelta = timedelta(minutes=30)
    refresh_reuse_grace: timedelta = timedelta(seconds=5)
    mfa_pending_ttl: timedelta = timedelta(minutes=5)
    login_max_failures: int = 5
    login_backoff_base: timedelta = timedelta(seconds=30)
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    rate_limit_per_minute: int = 1200
    compliance_clock_interval: float = 30.0
    onboarding_allow_private_targets: bool = False
    log_level: str = "INFO"
    var_dir: Path = Path("var")
    totp_issuer: str = "SignalOS"
    otp_ttl: timedelta = timedelta(minutes=5)
    otp_resend_cooldown: timedelta = timedelta(seconds=60)
    otp_hourly_cap: int = 5
    otp_max_attempts: int = 5
    mfa_lockout_threshold: int = 5
    mfa_lockout: timedelta = timedelta(minutes=5)
    mfa_lockout_max: timedelta = timedelta(hours=1)
    mfa_ip_rate_per_minute: int = 30
    step_up_ttl: timedelta = timedelta(minutes=5)
    recovery_trading_hold: timedelta = timedelta(hours=24)
    outbox_path: Path | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: str = "starttls"
    smtp_from: str = "SignalOS <no-reply@localhost>"
    sms_url: str | None = None
    sms_token: str | None = None

    def __repr__(self) -> str:
        # Secrets never appear in a repr (and so never in a log line or a traceback).
        return f"Settings(database_url={self.database_url!r}, host={self.host!r}, port={self.port}, dev_mode={self.dev_mode})"

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every ``SIGNALOS_*`` variable; raise :class:`ConfigurationError` naming the bad one."""
        env = os.environ if environ is None else environ
        dev_mode = env.get("SIGNALOS_DEV", "0") == "1"
        jwt_secret = env.get("SIGNALOS_JWT_SECRET", "")
        if not jwt_secret:
            if not dev_mode:
                raise ConfigurationError(
                    "SIGNALOS_JWT_SECRET is not set; refusing to start with a default secret "
                    "(set SIGNALOS_DEV=1 for local development only)",
                    field="SIGNALOS_JWT_SECRET",
                )
            jwt_secret = _DEV_JWT_SECRET
        elif jwt_secret == _DEV_JWT_SECRET and not dev_mode:
            raise ConfigurationError(
                "SIGNALOS_JWT_SECRET is the public development secret", field="SIGNALOS_JWT_SECRET"
            )
        if len(jwt_secret.encode()) < _MIN_SECRET_BYTES:
            raise ConfigurationError("SIGNALOS_JWT_SECRET must be at least 32 bytes", field="SIGNALOS_JWT_SECRET")

        key_text = env.get("SIGNALOS_DATA_KEY", "")
        key_file = env.get("SIGNALOS_DATA_KEY_FILE", "")
        key_name = "SIGNALOS_DATA_KEY"
        if not key_text and key_file:
            key_name = "SIGNALOS_DATA_KEY_FILE"
            try:
                key_text = ",".join(line.strip() for line in Path(key_file).read_text().splitlines() if line.strip())
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read SIGNALOS_DATA_KEY_FILE: {exc.strerror}", field=key_name
                ) from None
        if not key_text:
            if not dev_mode:
                raise ConfigurationError(
                    "SIGNALOS_DATA_KEY (or SIGNALOS_DATA_KEY_FILE) is not set; refusing to start with a default key",
                    field="SIGNALOS_DATA_KEY",
                )
            key_text = _DEV_DATA_KEY
        data_keys = tuple(_decode_key(key_name, part) for part in key_text.split(",") if part.strip())
        if not dev_mode and _decode_key("SIGNALOS_DATA_KEY", _DEV_DATA_KEY) in data_keys:
            raise ConfigurationError("SIGNALOS_DATA_KEY contains the public development key", field=key_name)

        log_level = env.get("SIGNALOS_LOG_LEVEL", "INFO").upper()
        if log_level not in _LOG_LEVELS:
            raise ConfigurationError(
                f"SIGNALOS_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}", field="SIGNALOS_LOG_LEVEL"
            )
        access_ttl = _int(env, "SIGNALOS_ACCESS_TOKEN_TTL", 600, minimum=1)
        session_abs = _int(env, "SIGNALOS_SESSION_ABSOLUTE_TTL", 43200, minimum=1)
        port = _int(env, "SIGNALOS_PORT", 8000, minimum=0)
        if port > 65535:
            raise ConfigurationError("SIGNALOS_PORT must be <= 65535", field="SIGNALOS_PORT")
        var_dir = Path(env.get("SIGNALOS_VAR_DIR", "./var"))
        clock_interval = _seconds(env, "SIGNALOS_COMPLIANCE_CLOCK_INTERVAL", 30.0)
        allow_private = _flag(env, "SIGNALOS_ONBOARDING_ALLOW_PRIVATE_TARGETS")
        parallelism = _int(env, "SIGNALOS_ARGON2_PARALLELISM", 4, minimum=1)
        memory_kib = _int(env, "SIGNALOS_ARGON2_MEMORY_KIB", 65536, minimum=8)
        if memory_kib < 8 * parallelism:  # argon2's own lower bound
            raise ConfigurationError(
                "SIGNALOS_ARGON2_MEMORY_KIB must be >= 8 x SIGNALOS_ARGON2_PARALLELISM",
                field="SIGNALOS_ARGON2_MEMORY_KIB",
            )
        smtp_tls = env.get("SIGNALOS_SMTP_TLS", "starttls").lower()
        if smtp_tls not in _SMTP_TLS_MODES:
            raise ConfigurationError(
                f"SIGNALOS_SMTP_TLS must be one of {', '.join(_SMTP_TLS_MODES)}", field="SIGNALOS_SMTP_TLS"
            )
        otp_ttl = _int(env, "SIGNALOS_OTP_TTL", 300, minimum=1)
        if otp_ttl > _MAX_OTP_TTL:
            raise ConfigurationError(
                f"SIGNALOS_OTP_TTL must be <= {_MAX_OTP_TTL} (NIST 800-63B)", field="SIGNALOS_OTP_TTL"
            )
        lockout = _int(env, "SIGNALOS_MFA_LOCKOUT_SECONDS", 300, minimum=1)
        return cls(
            database_url=env.get("SIGNALOS_DATABASE_URL") or f"sqlite+aiosqlite:///{var_dir / 'signalos.db'}",
            jwt_secret=jwt_secret,
            data_keys=data_keys,
            dev_mode=dev_mode,
            host=env.get("SIGNALOS_HOST", "127.0.0.1"),
            port=port,
            jwt_issuer=env.get("SIGNALOS_JWT_ISSUER", "signalos"),
            jwt_audience=env.get("SIGNALOS_JWT_AUDIENCE", "signalos-api"),
            access_token_ttl=timedelta(seconds=access_ttl),
            refresh_token_ttl=timedelta(
                seconds=min(_int(env, "SIGNALOS_REFRESH_TOKEN_TTL", 43200, minimum=1), session_abs)
            ),
            session_absolute_ttl=timedelta(seconds=session_abs),
            session_idle_ttl=timedelta(seconds=_int(env, "SIGNALOS_SESSION_IDLE_TTL", 1800, minimum=1)),
            refresh_reuse_grace=timedelta(seconds=_int(env, "SIGNALOS_REFRESH_REUSE_GRACE", 5)),
            mfa_pending_ttl=timedelta(seconds=_int(env, "SIGNALOS_MFA_PENDING_TTL", 300, minimum=1)),
            login_max_failures=_int(env, "SIGNALOS_LOGIN_MAX_FAILURES", 5, minimum=1),
            login_backoff_base=timedelta(seconds=_int(env, "SIGNALOS_LOGIN_BACKOFF_BASE", 30, minimum=1)),
            argon2_time_cost=_int(env, "SIGNALOS_ARGON2_TIME_COST", 3, minimum=1),
            argon2_memory_kib=memory_kib,
            argon2_parallelism=parallelism,
            rate_limit_per_minute=_int(env, "SIGNALOS_RATE_LIMIT_PER_MINUTE", 1200),
            compliance_clock_interval=clock_interval,
            onboarding_allow_private_targets=allow_private,
            log_level=log_level,
            var_dir=var_dir,
            totp_issuer=env.get("SIGNALOS_TOTP_ISSUER") or "SignalOS",
            otp_ttl=timedelta(seconds=otp_ttl),
            otp_resend_cooldown=timedelta(seconds=_int(env, "SIGNALOS_OTP_RESEND_COOLDOWN", 60)),
            otp_hourly_cap=_int(env, "SIGNALOS_OTP_HOURLY_CAP", 5, minimum=1),
            otp_max_attempts=_int(env, "SIGNALOS_OTP_MAX_ATTEMPTS", 5, minimum=1),
            mfa_lockout_threshold=_int(env, "SIGNALOS_MFA_LOCKOUT_THRESHOLD", 5, minimum=1),
            mfa_lockout=timedelta(seconds=lockout),
            mfa_lockout_max=timedelta(
                seconds=max(lockout, _int(env, "SIGNALOS_MFA_LOCKOUT_MAX_SECONDS", 3600, minimum=1))
            ),
            mfa_ip_rate_per_minute=_int(env, "SIGNALOS_MFA_IP_RATE_PER_MINUTE", 30),
            step_up_ttl=timedelta(seconds=_int(env, "SIGNALOS_STEP_UP_TTL", 300, minimum=1)),
            recovery_trading_hold=timedelta(seconds=_int(env, "SIGNALOS_RECOVERY_TRADING_HOLD", 86400)),
            outbox_path=Path(env["SIGNALOS_OUTBOX_PATH"]) if env.get("SIGNALOS_OUTBOX_PATH") else None,
            smtp_host=env.get("SIGNALOS_SMTP_HOST") or None,
            smtp_port=_int(env, "SIGNALOS_SMTP_PORT", 587, minimum=1),
            smtp_user=env.get("SIGNALOS_SMTP_USER") or None,
            smtp_password=env.get("SIGNALOS_SMTP_PASSWORD") or None,
            smtp_tls=smtp_tls,
            smtp_from=env.get("SIGNALOS_SMTP_FROM") or "SignalOS <no-reply@localhost>",
            sms_url=env.get("SIGNALOS_SMS_URL") or None,
            sms_token=env.get("SIGNALOS_SMS_TOKEN") or None,
        )


def environment_table() -> str:
    """The Markdown table of :data:`ENVIRONMENT` (README.md and docs/configuration.md embed it)."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    lines += [f"| `{v.name}` | `{v.default}` | {v.description} |" for v in ENVIRONMENT]
    return "\n".join(lines)


_TABLE_BLOCK = re.compile(r"(<!-- env-table:start -->\n).*?(\n<!-- env-table:end -->)", re.S)


def update_environment_tables(*paths: Path) -> None:
    """Rewrite the table between the ``env-table`` markers of each file (``python -m service.settings FILE...``)."""
    for path in paths:
        text = path.read_text()
        path.write_text(_TABLE_BLOCK.sub(lambda m: m.group(1) + environment_table() + m.group(2), text))


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import sys

    update_environment_tables(*(Path(arg) for arg in sys.argv[1:]))
