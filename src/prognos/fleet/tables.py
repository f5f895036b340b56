"""The fleet database schema (SQLAlchemy 2 declarative). Alembic migrations in ``migrations/``
create exactly these tables; ``tests/unit/fleet/test_migrations.py`` checks they agree.

Times are timezone-aware UTC. Readings keep one column per measurement (NASA C-MAPSS units) so
they stay queryable and portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from prognos.data.schema import MEASUREMENT_FIELDS

__all__ = ["ACTIVE_ALERT", "AlertRow", "ApiKeyRow", "Base", "EngineRow", "FailureRow", "PredictionRow", "ReadingRow",
           "ShadowPredictionRow", "utcnow"]

#: SQLite has no 64-bit autoincrement type of its own; INTEGER PRIMARY KEY is its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")

#: An alert is active (blocks a duplicate of its kind for its engine) until it is resolved.
ACTIVE_ALERT = ("open", "acknowledged")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out: SQLite stores naive text, PostgreSQL ``timestamptz``."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class EngineRow(Base):
    """An engine and, denormalised for the fleet page, its latest state and prediction."""

    __tablename__ = "engines"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_family: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_cycle: Mapped[int | None] = mapped_column(Integer)
    last_reading_at: Mapped[datetime | None]
    n_readings: Mapped[int] = mapped_column(Integer, default=0)
    rul: Mapped[float | None] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    # The stored status has hysteresis (prognos.status.HeldStatus; migration 0004): ``status`` is the
    # held one, ``status_better_for`` / ``status_better_worst`` the streak of better readings so far.
    status: Mapped[str] = mapped_column(String(16), default="unknown", index=True)
    status_better_for: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status_better_worst: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(128))
    predicted_cycle: Mapped[int | None] = mapped_column(Integer)
    predicted_at: Mapped[datetime | None]


class ReadingRow(Base):
    """One engine at one cycle; (engine_id, cycle) is unique, which makes ingestion idempotent."""

    __tablename__ = "readings"
    __table_args__ = (UniqueConstraint("engine_id", "cycle", name="uq_readings_engine_cycle"),
                      Index("ix_readings_received_at", "received_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engine_id: Mapped[str] = mapped_column(String(64), ForeignKey("engines.id", ondelete="CASCADE"))
    cycle: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# The 24 measurement columns (settings then sensors), nullable: a CSV may lack unused channels.
for _name in MEASUREMENT_FIELDS:
    setattr(ReadingRow, _name, mapped_column(_name, Float, nullable=True))
del _name


class PredictionRow(Base):
    """A stored RUL prediction (cycles after ``cycle``) with its interval and the model that made it."""

    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_engine_cycle", "engine_id", "cycle"),
                      Index("ix_predictions_created_at", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engine_id: Mapped[str] = mapped_column(String(64), ForeignKey("engines.id", ondelete="CASCADE"))
    cycle: Mapped[int] = mapped_column(Integer)
    rul: Mapped[float] = mapped_column(Float)
    lower: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRow(Base):
    """open -> acknowledged -> resolved. An alert is on an engine (``target_kind`` ``engine``,
    ``engine_id`` set) or on a model version (``model``, ``model_version`` set, no engine; migration
    0003). The partial unique indexes allow one active alert per (engine, kind) and per (model
    version, kind), so even concurrent writers cannot open a duplicate."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_active", "engine_id", "kind", unique=True,
              sqlite_where=text("status != 'resolved'"), postgresql_where=text("status != 'resolved'")),
        Index("uq_alerts_active_model", "model_version", "kind", unique=True,
              sqlite_where=text("status != 'resolved' AND target_kind = 'model'"),
              postgresql_where=text("status != 'resolved' AND target_kind = 'model'")),
        Index("ix_alerts_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_kind: Mapped[str] = mapped_column(String(8), default="engine", server_default="engine")
    engine_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("engines.id", ondelete="CASCADE"),
                                                  index=True)
    model_version: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Memory (migration 0004): the worst severity it ever had, every transition (event, severity,
    # time, cycle, reason) and how many verdicts in a row found its condition clear (debounce).
    peak_severity: Mapped[str] = mapped_column(String(16))
    transitions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    clear_for: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))


class ApiKeyRow(Base):
    """An API key, stored only as the SHA-256 of the secret (the key is shown once, at creation)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


# --- model lifecycle (prognos.lifecycle.ports.GroundTruth, implemented by fleet/ground_truth.py;
# migration 0002) -----------------------------------------------------------------------------


class FailureRow(Base):
    """Ground truth: the cycle at which an engine actually failed (one per engine)."""

    __tablename__ = "failures"

    engine_id: Mapped[str] = mapped_column(String(64), ForeignKey("engines.id", ondelete="CASCADE"),
                                           primary_key=True)
    cycle: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64))


class ShadowPredictionRow(Base):
    """One request scored by both the production and the candidate version (shadow canary). Not
    tied to ``engines``: shadow traffic also comes from ``/predict``, for engines the fleet may not know."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (Index("ix_shadow_predictions_engine_cycle", "engine_id", "cycle"),
                      Index("ix_shadow_predictions_created_at", "created_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    engine_id: Mapped[str] = mapped_column(String(64))
    cycle: Mapped[int | None] = mapped_column(Integer)
    production_version: Mapped[str] = mapped_column(String(128))
    production_rul: Mapped[float] = mapped_column(Float)
    candidate_version: Mapped[str] = mapped_column(String(128))
    candidate_rul: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
