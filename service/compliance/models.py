"""Compliance storage: trading accounts with their mode and engine state, mode history, firm/personal profile
versions, claimed clock jobs, equity points for reports, and the hash-chained audit tables.

Money is stored as decimal *text* (never a float column, and SQLite has no decimal type); the engine state is
the msgspec JSON of :class:`signalos_core.compliance.AccountState`. ``trading_account.state_version`` is the
optimistic-concurrency counter every state write checks (see services.py, "Serialising one account").

The three ``audit_*`` tables mirror the layout of :class:`signalos_core.audit.SQLiteAuditStore` column for
column (canonical text in every cell), so ``signalos audit verify var/signalos.db`` checks a SQLite service
database directly and the service verifies PostgreSQL with the same library code.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from advanced_alchemy.types.datetime import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import UUIDAuditBase, UUIDBase, metadata

__all__ = [
    "ClockJob",
    "ComplianceProfile",
    "EquityPoint",
    "ModeChange",
    "TradingAccount",
    "audit_heads",
    "audit_meta",
    "audit_records",
]

_MONEY = 40  # decimal text, e.g. "100000.00"


class TradingAccount(UUIDAuditBase):
    """A broker account a user trades, optionally funded by a firm, with its compliance mode and engine state."""

    __tablename__ = "trading_account"
    __table_args__ = (
        Index("ix_trading_account_owner_id", "owner_id"),
        Index("ix_trading_account_firm_id", "firm_id"),
    )

    owner_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    firm_id: Mapped[UUID | None] = mapped_column(ForeignKey("firm.id", ondelete="RESTRICT"), default=None)
    name: Mapped[str] = mapped_column(String(200))
    broker: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(100))
    account_size: Mapped[str] = mapped_column(String(_MONEY))
    currency: Mapped[str] = mapped_column(String(3))
    # Current compliance mode (None until one is chosen); history lives in compliance_mode_change.
    mode_kind: Mapped[str | None] = mapped_column(String(20), default=None)  # firm | regulatory | personal
    mode_source: Mapped[str | None] = mapped_column(String(20), default=None)  # builtin | firm | personal
    mode_profile_id: Mapped[str | None] = mapped_column(String(200), default=None)
    mode_version: Mapped[str | None] = mapped_column(String(100), default=None)
    mode_params: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    mode_profile_row: Mapped[UUID | None] = mapped_column(
        ForeignKey("compliance_profile.id", ondelete="RESTRICT"), default=None
    )
    mode_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Engine state (AccountState as msgspec JSON) and its optimistic version.
    state: Mapped[str] = mapped_column(Text)
    state_version: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | locked | breached


class ModeChange(UUIDBase):
    """One switch of an account's compliance mode: who, when, why, from what to what (append-only)."""

    __tablename__ = "compliance_mode_change"
    __table_args__ = (Index("ix_compliance_mode_change_account", "account_id", "changed_at"),)

    account_id: Mapped[UUID] = mapped_column(ForeignKey("trading_account.id", ondelete="CASCADE"))
    kind: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(20))
    profile_id: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[str | None] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    previous_profile_id: Mapped[str | None] = mapped_column(String(200), default=None)
    previous_version: Mapped[str | None] = mapped_column(String(100), default=None)
    actor_id: Mapped[UUID] = mapped_column()
    actor_role: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(1000))
    changed_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class ComplianceProfile(UUIDBase):
    """One uploaded profile version (YAML kept verbatim), owned by a firm or, for personal modes, by a user.

    ``first_used_at`` is set when an account is first switched to it; from then on the version is immutable.
    ``owner_key`` (``firm:<uuid>`` or ``user:<uuid>``) makes (owner, profile id, version) unique.
    """

    __tablename__ = "compliance_profile"
    __table_args__ = (UniqueConstraint("owner_key", "profile_id", "version", name="uq_compliance_profile_version"),)

    owner_key: Mapped[str] = mapped_column(String(60))
    scope: Mapped[str] = mapped_column(String(20))  # firm | personal
    firm_id: Mapped[UUID | None] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), default=None)
    owner_id: Mapped[UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), default=None)
    profile_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500), default="")
    effective_from: Mapped[dt.date] = mapped_column(Date)
    yaml_text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[UUID] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    first_used_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ClockJob(UUIDBase):
    """A clock event claimed by one replica. The unique key makes a second claim of the same event fail, and
    the claim commits in the same transaction as the event's effect, so each event takes effect exactly once."""

    __tablename__ = "compliance_clock_job"
    __table_args__ = (
        UniqueConstraint("account_id", "event", "scheduled_at", name="uq_compliance_clock_job_key"),
        Index("ix_compliance_clock_job_account", "account_id", "scheduled_at"),
    )

    account_id: Mapped[UUID] = mapped_column(ForeignKey("trading_account.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(60))
    scheduled_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    claimed_by: Mapped[str] = mapped_column(String(100))
    claimed_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    outcome: Mapped[str] = mapped_column(String(40))
    actions: Mapped[list[Any]] = mapped_column(JsonB, default=list)


class EquityPoint(UUIDBase):
    """Equity and the loss floors in force at one moment (the report chart's data)."""

    __tablename__ = "compliance_equity_point"
    __table_args__ = (Index("ix_compliance_equity_point_account_at", "account_id", "at"),)

    account_id: Mapped[UUID] = mapped_column(ForeignKey("trading_account.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    equity: Mapped[str] = mapped_column(String(_MONEY))
    balance: Mapped[str] = mapped_column(String(_MONEY))
    daily_floor: Mapped[str | None] = mapped_column(String(_MONEY), default=None)
    max_floor: Mapped[str | None] = mapped_column(String(_MONEY), default=None)


# --------------------------------------------------------------------------------------------- audit tables
# Same names and columns as signalos_core.audit's SQLite store; cells hold canonical text (see services).
audit_records = Table(
    "audit_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("format", Integer, nullable=False),
    Column("chain_id", String(200), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("account_id", String(200)),
    Column("profile_id", String(200)),
    Column("profile_version", String(100)),
    Column("profile_hash", String(100)),
    Column("backend", String(40)),
    Column("input_digest", String(64)),
    Column("input", Text),
    Column("outcome", String(40)),
    Column("rules", Text, nullable=False),
    Column("actor", String(200)),
    Column("reason", Text),
    Column("details", Text),
    Column("hash_alg", String(20), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("chain_id", "sequence", name="uq_audit_records_chain_sequence"),
    Index("audit_records_account", "account_id", "id"),
    Index("audit_records_chain", "chain_id", "id"),
    Index("audit_records_time", "recorded_at", "id"),
    Index("audit_records_outcome", "outcome", "id"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("chain_id", String(200), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_meta = Table(
    "audit_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", String(200), nullable=False),
)
