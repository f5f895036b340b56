"""The fleet store: engines, readings, predictions, alerts and ground truth in a SQL database
(SQLite or PostgreSQL through SQLAlchemy). The one storage seam of the fleet app, assembled from
one module per noun, each a mixin over :class:`~prognos.fleet.transactions.Transactions`:

==========================  =====================================================================
``transactions``            one committed transaction per write; group commit (``run_group``)
``engines``                 create/tag, read, list (paged, filtered, sorted)
``readings``                idempotent storage by (engine, cycle), history for scoring, listing
``predictions``             predictions + each engine's current state + alert verdicts, history
``alert_store``             alert transitions (pure, in ``alerts``) applied to rows; ack/resolve
``retention``               deleting old readings and predictions
``ground_truth``            failures and shadow pairs (the lifecycle's ``GroundTruth`` port)
==========================  =====================================================================

Every write is a transaction committed before the caller acknowledges anything;
:meth:`FleetStore.run_group` lets concurrent writes share one transaction (a savepoint each) —
see :mod:`prognos.fleet.committer`.
"""

from __future__ import annotations

from prognos.fleet.alert_store import AlertStore
from prognos.fleet.alerts import SEVERITY_RANK
from prognos.fleet.engines import ENGINE_SORTS, EngineStore
from prognos.fleet.ground_truth import GroundTruthStore
from prognos.fleet.predictions import PredictionStore
from prognos.fleet.readings import ReadingStore
from prognos.fleet.retention import RetentionStore

__all__ = ["ENGINE_SORTS", "SEVERITY_RANK", "FleetStore"]


class FleetStore(EngineStore, ReadingStore, PredictionStore, AlertStore, RetentionStore, GroundTruthStore):
    """Typed operations over a migrated :class:`~prognos.fleet.database.Database`. Synchronous
    (call from a worker thread in async code); thread-safe. Implements
    :class:`prognos.lifecycle.ports.GroundTruth`."""
