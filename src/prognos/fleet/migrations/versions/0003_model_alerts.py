"""Model-level alerts: an alert targets an engine or a model version.

Adds ``alerts.target_kind`` ('engine' | 'model') and ``alerts.model_version``, makes
``alerts.engine_id`` nullable, and a partial unique index allowing one active alert per (model
version, kind). Drift alerts that earlier versions hung on a pseudo-engine ``model`` become alerts
on their model version, and that pseudo-engine is removed (it showed up in the fleet table).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ACTIVE_MODEL = "status != 'resolved' AND target_kind = 'model'"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("target_kind", sa.String(8), nullable=False, server_default="engine"))
        batch.add_column(sa.Column("model_version", sa.String(128)))
        batch.alter_column("engine_id", existing_type=sa.String(64), nullable=True)
    op.create_index("uq_alerts_active_model", "alerts", ["model_version", "kind"], unique=True,
                    sqlite_where=sa.text(_ACTIVE_MODEL), postgresql_where=sa.text(_ACTIVE_MODEL))
    _move_pseudo_engine_alerts()


def _move_pseudo_engine_alerts() -> None:
    conn = op.get_bind()
    tags = conn.execute(sa.text("SELECT tags FROM engines WHERE id = 'model'")).scalar()
    if tags is None:
        return
    if isinstance(tags, str):
        tags = json.loads(tags)
    if tags != {"kind": "model"}:
        return  # a real engine that happens to be called "model": leave it alone
    for alert_id, details in conn.execute(sa.text("SELECT id, details FROM alerts WHERE engine_id = 'model'")).all():
        if isinstance(details, str):
            details = json.loads(details)
        version = (details or {}).get("model_version") or "unknown"
        conn.execute(sa.text("UPDATE alerts SET target_kind = 'model', model_version = :v, engine_id = NULL "
                             "WHERE id = :i"), {"v": version, "i": alert_id})
    conn.execute(sa.text("DELETE FROM engines WHERE id = 'model'"))


def downgrade() -> None:
    op.execute("DELETE FROM alerts WHERE target_kind = 'model'")
    op.drop_index("uq_alerts_active_model", table_name="alerts")
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("engine_id", existing_type=sa.String(64), nullable=False)
        batch.drop_column("model_version")
        batch.drop_column("target_kind")
