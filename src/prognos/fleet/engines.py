"""Engines in the fleet store: create or tag one, read one, list them (paged, filtered, sorted)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from prognos.data.validation import MAX_NAME_CHARS, check_tags, check_text, shown
from prognos.errors import NotFoundError, ValidationError
from prognos.fleet.records import EngineRecord, Page
from prognos.fleet.tables import EngineRow, utcnow
from prognos.fleet.transactions import Transactions

__all__ = ["ENGINE_SORTS", "EngineStore", "engine_record", "require_engine"]

#: ``sort=`` values of the engine listing ("-" prefix = descending).
ENGINE_SORTS: dict[str, Any] = {
    "engine_id": EngineRow.id,
    "rul": EngineRow.rul,
    "lower": EngineRow.lower,
    "last_update": EngineRow.last_reading_at,
    "last_cycle": EngineRow.last_cycle,
    "status": EngineRow.status,
}


def engine_record(row: EngineRow) -> EngineRecord:
    return EngineRecord(row.id, dict(row.tags or {}), row.model_family, row.created_at, row.last_cycle,
                        row.last_reading_at, row.n_readings, row.rul, row.lower, row.upper, row.status,
                        row.model_version, row.predicted_cycle, row.predicted_at)


def require_engine(s: Session, engine_id: str) -> EngineRow:
    """The engine's row; :class:`NotFoundError` naming it when there is none."""
    row = s.get(EngineRow, engine_id)
    if row is None:
        raise NotFoundError(f"engine {engine_id!r} not found")
    return row


class EngineStore(Transactions):
    def upsert_engine(self, engine_id: str, tags: dict[str, Any] | None = None,
                      model_family: str | None = None) -> EngineRecord:
        # Refused before the transaction: nothing either database cannot store (or a page could
        # not read back) is ever written, and SQLite and PostgreSQL answer alike.
        if tags is not None:
            check_tags(tags)
        if model_family is not None:
            check_text(model_family, "model_family", MAX_NAME_CHARS)

        def run(s: Session) -> EngineRecord:
            row = s.get(EngineRow, engine_id)
            if row is None:
                row = EngineRow(id=engine_id, tags=tags or {}, model_family=model_family, n_readings=0,
                                status="unknown", created_at=utcnow())
                s.add(row)
            else:
                if tags is not None:
                    row.tags = tags
                if model_family is not None:
                    row.model_family = model_family
            s.flush()
            return engine_record(row)

        return self._write(run)

    def get_engine(self, engine_id: str) -> EngineRecord:
        with self.db.sessions() as s:
            return engine_record(require_engine(s, engine_id))

    def list_engines(self, *, status: str | None = None, q: str | None = None, sort: str = "engine_id",
                     limit: int = 100, offset: int = 0) -> Page:
        for name, text in (("status", status), ("q", q), ("sort", sort)):
            if text is not None:
                check_text(text, name)
        key = sort.lstrip("-")
        if key not in ENGINE_SORTS:
            raise ValidationError(f"sort: {shown(sort)} is not one of {', '.join(ENGINE_SORTS)} (prefix - to reverse)")
        col = ENGINE_SORTS[key]
        order = col.desc() if sort.startswith("-") else col.asc()
        stmt: Select[Any] = select(EngineRow)
        if status:
            stmt = stmt.where(EngineRow.status.in_([s.strip() for s in status.split(",")]))
        if q:
            pattern = f"%{q.lower()}%"
            stmt = stmt.where(or_(func.lower(EngineRow.id).like(pattern),
                                  func.lower(func.coalesce(EngineRow.model_family, "")).like(pattern)))
        with self.db.sessions() as s:
            total = s.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = s.scalars(stmt.order_by(order.nulls_last(), EngineRow.id).limit(limit).offset(offset)).all()
            return Page([engine_record(r).to_dict() for r in rows], total, limit, offset)
