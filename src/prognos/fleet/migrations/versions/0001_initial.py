"""Initial fleet schema: engines, readings, predictions, alerts, api_keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from prognos.data.schema import MEASUREMENT_FIELDS
from prognos.fleet.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "engines",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("model_family", sa.String(64)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("last_cycle", sa.Integer()),
        sa.Column("last_reading_at", UtcDateTime()),
        sa.Column("n_readings", sa.Integer(), nullable=False),
        sa.Column("rul", sa.Float()),
        sa.Column("lower", sa.Float()),
        sa.Column("upper", sa.Float()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(128)),
        sa.Column("predicted_cycle", sa.Integer()),
        sa.Column("predicted_at", UtcDateTime()),
    )
    op.create_index("ix_engines_status", "engines", ["status"])
    op.create_table(
        "readings",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("engine_id", sa.String(64), sa.ForeignKey("engines.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        *[sa.Column(name, sa.Float()) for name in MEASUREMENT_FIELDS],
        sa.UniqueConstraint("engine_id", "cycle", name="uq_readings_engine_cycle"),
    )
    op.create_index("ix_readings_received_at", "readings", ["received_at"])
    op.create_table(
        "predictions",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("engine_id", sa.String(64), sa.ForeignKey("engines.id", ondelete="CASCADE"), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("rul", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_predictions_engine_cycle", "predictions", ["engine_id", "cycle"])
    op.create_index("ix_predictions_created_at", "predictions", ["created_at"])
    op.create_table(
        "alerts",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("engine_id", sa.String(64), sa.ForeignKey("engines.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("acknowledged_at", UtcDateTime()),
        sa.Column("acknowledged_by", sa.String(64)),
        sa.Column("resolved_at", UtcDateTime()),
        sa.Column("resolved_by", sa.String(64)),
    )
    op.create_index("ix_alerts_engine_id", "alerts", ["engine_id"])
    op.create_index("ix_alerts_status", "alerts", ["status"])
    # One active (not resolved) alert per engine and kind, enforced by the database itself.
    op.create_index("uq_alerts_active", "alerts", ["engine_id", "kind"], unique=True,
                    sqlite_where=sa.text("status != 'resolved'"), postgresql_where=sa.text("status != 'resolved'"))
    op.create_table(
        "api_keys",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime()),
    )


def downgrade() -> None:
    for table in ("api_keys", "alerts", "predictions", "readings", "engines"):
        op.drop_table(table)
