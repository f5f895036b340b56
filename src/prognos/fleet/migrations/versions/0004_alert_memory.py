"""Alerts with memory and a stored status with hysteresis.

Adds ``alerts.peak_severity`` (the worst severity an alert ever had), ``alerts.transitions`` (its
opened / escalated / eased / acknowledged / resolved events) and ``alerts.clear_for`` (verdicts in
a row that found its condition clear: the resolve debounce); ``engines.status_better_for`` and
``engines.status_better_worst`` (the easing streak of :class:`prognos.status.HeldStatus`).

Existing alerts are kept: their peak is their severity (the best that is known) and their
transitions are rebuilt from what the row recorded (opened, acknowledged, resolved, with times).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _iso(v: Any) -> str | None:
    if v is None:
        return None
    return v.isoformat() if isinstance(v, datetime) else str(v)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("peak_severity", sa.String(16)))
        batch.add_column(sa.Column("transitions", sa.JSON()))
        batch.add_column(sa.Column("clear_for", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("engines") as batch:
        batch.add_column(sa.Column("status_better_for", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("status_better_worst", sa.String(16)))
    conn = op.get_bind()
    alerts = sa.table("alerts", sa.column("id"), sa.column("severity"), sa.column("peak_severity"),
                      sa.column("transitions", sa.JSON()), sa.column("opened_at"), sa.column("acknowledged_at"),
                      sa.column("acknowledged_by"), sa.column("resolved_at"), sa.column("resolved_by"))
    rows = conn.execute(sa.select(alerts.c.id, alerts.c.severity, alerts.c.opened_at, alerts.c.acknowledged_at,
                                  alerts.c.acknowledged_by, alerts.c.resolved_at, alerts.c.resolved_by)).all()
    for r in rows:
        events: list[dict[str, Any]] = [{"event": "opened", "severity": r.severity, "at": _iso(r.opened_at),
                                         "cycle": None, "reason": "recorded before transitions were kept"}]
        if r.acknowledged_at is not None:
            events.append({"event": "acknowledged", "severity": r.severity, "at": _iso(r.acknowledged_at),
                           "cycle": None, "reason": f"by {r.acknowledged_by}"})
        if r.resolved_at is not None:
            events.append({"event": "resolved", "severity": r.severity, "at": _iso(r.resolved_at), "cycle": None,
                           "reason": f"by {r.resolved_by}"})
        conn.execute(alerts.update().where(alerts.c.id == r.id).values(peak_severity=r.severity,
                                                                         transitions=events))
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column("peak_severity", existing_type=sa.String(16), nullable=False)
        batch.alter_column("transitions", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("engines") as batch:
        batch.drop_column("status_better_worst")
        batch.drop_column("status_better_for")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("clear_for")
        batch.drop_column("transitions")
        batch.drop_column("peak_severity")


