"""sync: which action holds each seq of a device (device fork detection)

Revision ID: 0008_sync_device_seq
Revises: 0007_email_verification
Create Date: 2026-11-28 06:35:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008_sync_device_seq'
down_revision: str | None = '0007_email_verification'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sync_device_seq',
    sa.Column('device_id', sa.String(length=64), nullable=False),
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('action_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['sync_device.device_id'], name=op.f('fk_sync_device_seq_device_id_sync_device'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id', 'seq', name=op.f('pk_sync_device_seq'))
    )


def downgrade() -> None:
    op.drop_table('sync_device_seq')
