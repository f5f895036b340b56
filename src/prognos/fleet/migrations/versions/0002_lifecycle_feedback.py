"""Model lifecycle: recorded engine failures (ground truth) and shadow-canary predictions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from prognos.fleet.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "failures",
        sa.Column("engine_id", sa.String(64), sa.ForeignKey("engines.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
    )
    # Not tied to the engines table: shadow traffic also comes from /predict, whose engines the
    # fleet may not know.
    op.create_table(
        "shadow_predictions",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("engine_id", sa.String(64), nullable=False),
        sa.Column("cycle", sa.Integer()),
        sa.Column("production_version", sa.String(128), nullable=False),
        sa.Column("production_rul", sa.Float(), nullable=False),
        sa.Column("candidate_version", sa.String(128), nullable=False),
        sa.Column("candidate_rul", sa.Float(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_shadow_predictions_engine_cycle", "shadow_predictions", ["engine_id", "cycle"])
    op.create_index("ix_shadow_predictions_created_at", "shadow_predictions", ["created_at"])


def downgrade() -> None:
    op.drop_table("shadow_predictions")
    op.drop_table("failures")
