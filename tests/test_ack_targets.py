"""`ack` refuses an id the store does not hold, for every kind of target, on the real engine."""

from __future__ import annotations

import pytest

from monitor.alerts import Alert, Findings
from monitor.errors import ConfigError
from monitor.policy.incidents import (
    UnknownTargetError,
    ack_states,
    acknowledge,
    group_incidents,
    upsert_incidents,
)
from monitor.policy.rollback import ROLLBACK_COLUMNS, RollbackDecision
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store


@pytest.fixture
def stored(store_dsn: str) -> dict[str, str]:
    """One alert, its incident and a rollback decision in a fresh store; their ids by kind."""
    alert = Alert.create(ts_ms=60_000, model_id="bot", model_version="2", detector="trigger", metric="x",
                         severity="high", score=1, threshold=1, evidence={}, discriminator="a")
    decision = RollbackDecision("decision-1", 60_000, "bot", "2", "rollback", "r", ("why",), (alert.alert_id,))
    with Store(store_dsn) as store:
        store.ensure_schema()
        sink = ClickHouseSink(store)
        sink.add_findings(Findings(alerts=[alert]))
        sink.flush()
        [incident] = upsert_incidents(store, group_incidents([alert], window_ms=3_600_000))
        store.insert("rollback_decisions", [[v] for v in decision.to_row()], ROLLBACK_COLUMNS)
    return {"alert": alert.alert_id, "incident": incident.incident_id, "rollback": decision.decision_id}


KINDS = ["alert", "incident", "rollback"]


@pytest.mark.parametrize("kind", KINDS)
def test_ack_of_a_stored_target_is_recorded(store_dsn: str, stored: dict[str, str], kind: str) -> None:
    with Store(store_dsn) as store:
        acknowledge(store, stored[kind], kind=kind, state="acknowledged", actor="ana")  # type: ignore[arg-type]
        assert ack_states(store, [stored[kind]], kind=kind) == {stored[kind]: "acknowledged"}  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("wrong", ["no-such-id", "{other}", "{own}x", "' OR 1=1 --", "{upper}", "{prefix}"])
def test_ack_of_an_unknown_target_is_refused_and_not_recorded(store_dsn: str, stored: dict[str, str], kind: str,
                                                               wrong: str) -> None:
    other = next(stored[k] for k in KINDS if k != kind)  # an id of another kind is not this kind's id
    own = stored[kind]
    target = wrong.format(other=other, own=own, upper=own.upper(), prefix=own[:8])
    with Store(store_dsn) as store:
        with pytest.raises(UnknownTargetError, match=f"no {kind} with id") as caught:
            acknowledge(store, target, kind=kind, state="resolved", actor="ana")  # type: ignore[arg-type]
        assert isinstance(caught.value, ConfigError)  # the CLI's exit code 2 today
        _, rows = store.query("SELECT count() FROM acknowledgements")
        assert rows == [(0,)]
