"""Sync storage: devices, the at-most-once action log, settings, signals, acks, and paper-trading state.

``sync_client_action`` is the record of every decided action: its ``action_id`` is UNIQUE, so an action can
never be recorded (and therefore applied) twice, and the row is written in the same transaction as the action's
effect (settings rows, the paper account). ``server_seq`` is the pull cursor. The paper account of a user is the
JSON export of :class:`signalos_core.offline.PaperBroker` for that user; its ``version`` row is updated first in
every push so pushes of one user serialise (row lock on PostgreSQL, the write lock on SQLite).
"""

from __future__ import annotations

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, LargeBinary, String, Table, Text

from service.db.base import metadata

__all__ = [
    "paper_account",
    "paper_quote",
    "sync_ack",
    "sync_action_seen",
    "sync_cancelled_signal",
    "sync_client_action",
    "sync_device",
    "sync_device_seq",
    "sync_setting",
]


def _user_fk() -> ForeignKey:
    return ForeignKey("user_account.id", ondelete="CASCADE")


def _user_id() -> Column[object]:
    return Column("user_id", GUID(length=16), _user_fk(), nullable=False)


sync_device = Table(
    "sync_device",
    metadata,
    Column("device_id", String(64), primary_key=True),
    _user_id(),
    Column("created_at", DateTimeUTC(timezone=True), nullable=False),
    Column("last_seen_at", DateTimeUTC(timezone=True), nullable=False),
    Index("ix_sync_device_user_id", "user_id"),
)

sync_client_action = Table(
    "sync_client_action",
    metadata,
    Column("server_seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("action_id", String(36), nullable=False, unique=True),
    _user_id(),
    Column("device_id", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("code", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTimeUTC(timezone=True), nullable=False),
    Index("ix_sync_client_action_device", "user_id", "device_id", "server_seq"),
)

#: Which action holds each ``seq`` of a device: a second installation re-using the device id collides here.
sync_device_seq = Table(
    "sync_device_seq",
    metadata,
    Column("device_id", String(64), ForeignKey("sync_device.device_id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("action_id", String(36), nullable=False),
)

sync_action_seen = Table(
    "sync_action_seen",
    metadata,
    _user_id(),
    Column("action_id", String(36), nullable=False),
    Column("first_seen", DateTimeUTC(timezone=True), nullable=False),
    Index("ux_sync_action_seen", "user_id", "action_id", unique=True),
)

sync_setting = Table(
    "sync_setting",
    metadata,
    _user_id(),
    Column("field", String(64), nullable=False),
    Column("value", Text, nullable=False),
    Index("ux_sync_setting", "user_id", "field", unique=True),
)

sync_cancelled_signal = Table(
    "sync_cancelled_signal",
    metadata,
    _user_id(),
    Column("signal_id", String(80), nullable=False),
    Column("cancelled_at", DateTimeUTC(timezone=True), nullable=False),
    Index("ux_sync_cancelled_signal", "user_id", "signal_id", unique=True),
)

sync_ack = Table(
    "sync_ack",
    metadata,
    _user_id(),
    Column("subject", String(80), nullable=False),
    Column("acked_at", DateTimeUTC(timezone=True), nullable=False),
    Index("ux_sync_ack", "user_id", "subject", unique=True),
)

paper_account = Table(
    "paper_account",
    metadata,
    Column("user_id", GUID(length=16), _user_fk(), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),
)

paper_quote = Table(
    "paper_quote",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("price", String(40), nullable=False),
    Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
)
