"""Declarative bases shared by every model (advanced-alchemy), and the one metadata alembic compares."""

from __future__ import annotations

from advanced_alchemy.base import BigIntBase, UUIDAuditBase, UUIDBase, orm_registry

__all__ = ["BigIntBase", "UUIDAuditBase", "UUIDBase", "metadata"]

metadata = orm_registry.metadata
