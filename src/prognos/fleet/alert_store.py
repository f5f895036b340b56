"""Alerts in the fleet store: the transitions of :mod:`prognos.fleet.alerts` applied to rows, for
engines (after each scored ingest) and model versions (raised by the lifecycle's monitoring), and
the listing and the people's acknowledge / resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from prognos.errors import NotFoundError
from prognos.fleet.alerts import (
    QUIET_EVENTS,
    SEVERITY_RANK,
    ActiveAlert,
    Debounce,
    Transition,
    acknowledged,
    transition,
)
from prognos.fleet.records import AlertChange, AlertCondition, AlertRecord, EngineScore, Page, iso
from prognos.fleet.tables import ACTIVE_ALERT, AlertRow, utcnow
from prognos.fleet.transactions import Transactions

__all__ = ["AlertStore", "alert_record", "sync_engine_alerts"]

_ALERTS = AlertRow.__table__
_SQL_ACTIVE_ALERTS = select(_ALERTS.c.id, _ALERTS.c.kind).where(  # type: ignore[attr-defined]
    _ALERTS.c.engine_id == bindparam("e"), _ALERTS.c.status.in_(ACTIVE_ALERT))  # type: ignore[attr-defined]


def alert_record(row: AlertRow) -> AlertRecord:
    return AlertRecord(row.id, row.engine_id, row.kind, row.severity, row.status, row.message, dict(row.details or {}),
                       row.opened_at, row.updated_at, row.acknowledged_at, row.acknowledged_by, row.resolved_at,
                       row.resolved_by, row.target_kind, row.model_version, row.peak_severity,
                       list(row.transitions or []))


def _remember(row: AlertRow, event: str, now: datetime, cycle: int | None, reason: str) -> None:
    """Append a transition to the alert's memory (a new list: the JSON column sees the change)."""
    row.transitions = [*(row.transitions or []), {"event": event, "severity": row.severity, "at": iso(now),
                                                  "cycle": cycle, "reason": reason}]


def _apply(s: Session, row: AlertRow | None, cond: AlertCondition | None, now: datetime,
           new_row: dict[str, Any], debounce: Debounce | None = None, cycle: int | None = None) -> AlertChange | None:
    """Apply :func:`transition` to ``row`` (None: no active alert; ``new_row`` names the target)."""
    active = None if row is None else ActiveAlert(row.severity, row.status, row.clear_for or 0, row.opened_at)
    t: Transition | None = transition(active, cond, debounce or Debounce(), now)
    if t is None:
        return None
    if row is None:
        assert cond is not None  # opening needs a condition
        row = AlertRow(**new_row, severity=t.severity, peak_severity=t.severity, status=t.status,
                       message=cond.message, details=cond.details, opened_at=now, updated_at=now, clear_for=0,
                       transitions=[])
        _remember(row, t.event, now, cycle, cond.message)
        s.add(row)
    else:
        row.severity, row.status, row.clear_for = t.severity, t.status, t.clear_for
        if t.refresh and cond is not None:
            row.message, row.details = cond.message, cond.details
        if t.event not in QUIET_EVENTS:
            row.updated_at = now
            # Easing never lowers the peak: the record keeps the worst the engine was in.
            if SEVERITY_RANK.get(t.severity, 0) > SEVERITY_RANK.get(row.peak_severity or "", 0):
                row.peak_severity = t.severity
            reason = cond.message if cond is not None else (
                f"condition clear for {t.clear_for} verdict(s) in a row")
            _remember(row, t.event, now, cycle, reason)
        if t.status == "resolved":
            row.resolved_at, row.resolved_by = now, "auto"
    s.flush()
    return None if t.event in QUIET_EVENTS else AlertChange(t.event, alert_record(row))


def sync_engine_alerts(s: Session, sc: EngineScore, now: datetime,
                       conditions: dict[str, AlertCondition | None] | None = None) -> list[AlertChange]:
    """Bring the engine's alerts to the verdicts of ``sc`` (or ``conditions``, when the caller
    settled them, e.g. ``rul_low`` after the status hysteresis) inside the caller's transaction."""
    conditions = sc.conditions if conditions is None else conditions
    if not conditions:
        return []
    # The common case — nothing active, nothing holds — costs one cheap query, no ORM objects.
    active_ids = {kind: i for i, kind in s.connection().execute(_SQL_ACTIVE_ALERTS, {"e": sc.engine_id})}
    if not active_ids and all(c is None for c in conditions.values()):
        return []
    changes = []
    for kind, cond in conditions.items():
        row = s.get(AlertRow, active_ids[kind]) if kind in active_ids else None
        change = _apply(s, row, cond, now, {"target_kind": "engine", "engine_id": sc.engine_id, "kind": kind},
                        sc.debounce, sc.cycle)
        if change is not None:
            changes.append(change)
    return changes


class AlertStore(Transactions):
    def set_model_alert(self, model_version: str, kind: str, condition: AlertCondition | None) -> list[AlertChange]:
        """Bring the alert of ``kind`` on ``model_version`` to ``condition`` (None: resolve it)."""

        def run(s: Session) -> list[AlertChange]:
            row = s.scalars(select(AlertRow).where(
                AlertRow.target_kind == "model", AlertRow.model_version == model_version, AlertRow.kind == kind,
                AlertRow.status.in_(ACTIVE_ALERT))).first()
            change = _apply(s, row, condition, utcnow(),
                            {"target_kind": "model", "model_version": model_version, "kind": kind})
            return [] if change is None else [change]

        return self._write(run)

    def list_alerts(self, *, status: str | None = None, severity: str | None = None, engine_id: str | None = None,
                    kind: str | None = None, target_kind: str | None = None, limit: int = 100,
                    offset: int = 0) -> Page:
        stmt: Select[Any] = select(AlertRow)
        for col, val in ((AlertRow.status, status), (AlertRow.severity, severity), (AlertRow.engine_id, engine_id),
                         (AlertRow.kind, kind), (AlertRow.target_kind, target_kind)):
            if val:
                stmt = stmt.where(col.in_([v.strip() for v in val.split(",")]))
        with self.db.sessions() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(stmt.order_by(AlertRow.opened_at.desc(), AlertRow.id.desc())
                             .limit(limit).offset(offset)).all()
            return Page([alert_record(r).to_dict() for r in rows], total, limit, offset)

    def get_alert(self, alert_id: int) -> AlertRecord:
        with self.db.sessions() as s:
            return alert_record(_require(s, alert_id))

    def acknowledge_alert(self, alert_id: int, by: str) -> AlertRecord:
        """open -> acknowledged (acknowledging an acknowledged alert is a no-op)."""

        def run(s: Session) -> AlertRecord:
            row = _require(s, alert_id)
            status = acknowledged(row.status, alert_id)
            if row.status != status:
                now = utcnow()
                row.status, row.acknowledged_at, row.acknowledged_by, row.updated_at = status, now, by, now
                _remember(row, "acknowledged", now, None, f"by {by}")
            s.flush()
            return alert_record(row)

        return self._write(run)

    def resolve_alert(self, alert_id: int, by: str) -> AlertRecord:
        """open/acknowledged -> resolved (resolving a resolved alert is a no-op)."""

        def run(s: Session) -> AlertRecord:
            row = _require(s, alert_id)
            if row.status != "resolved":
                now = utcnow()
                row.status, row.resolved_at, row.resolved_by, row.updated_at = "resolved", now, by, now
                _remember(row, "resolved", now, None, f"by {by}")
            s.flush()
            return alert_record(row)

        return self._write(run)


def _require(s: Session, alert_id: int) -> AlertRow:
    row = s.get(AlertRow, alert_id)
    if row is None:
        raise NotFoundError(f"alert {alert_id} not found")
    return row
