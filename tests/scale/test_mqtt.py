"""MQTT ingestion against a real Mosquitto: readings published at QoS 1 end up stored and scored,
bad messages go to the error topic without stopping the subscriber, and a broker restart in the
middle of a stream loses no reading the broker acknowledged."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from prognos.fleet.mqtt import MqttPublisher, subscribe_errors
from tests.scale.brokers import Mosquitto
from tests.scale.conftest import MqttApp, wait_for
from tests.unit.serving.factory import readings


def _stored(app: MqttApp, engine_id: str) -> list[int]:
    with app.client() as c:
        r = c.get(f"/api/v1/engines/{engine_id}/readings", params={"limit": 1000})
        if r.status_code == 404:
            return []
        assert r.status_code == 200, r.text
        return [item["cycle"] for item in r.json()["items"]]


def test_published_readings_are_stored_and_scored(mqtt_app: MqttApp, tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 45, engine=1)
    with MqttPublisher(mqtt_app.settings) as pub:
        pub.wait_connected()
        pub.publish("mq-1", rows[:30])  # a list, as the REST body
        for row in rows[30:]:
            pub.publish("mq-1", row)  # one reading object, as the REST body
        pub.publish("mq-1", rows[40:])  # at-least-once: a resend is a duplicate, not a second copy
        pub.flush()
    cycles = [r["cycle"] for r in rows]
    wait_for(lambda: _stored(mqtt_app, "mq-1") == cycles, "all 45 readings stored once")
    wait_for(lambda: mqtt_app.subscriber.counters.stored == 17, "every message committed")
    with mqtt_app.client() as c:
        engine = c.get("/api/v1/engines/mq-1").json()
        assert engine["last_cycle"] == cycles[-1]
        latest = engine["latest_prediction"]
        assert latest is not None and latest["cycle"] == cycles[-1]
        assert latest["model_version"] and latest["rul"] >= 0
        # The same history through REST /predict gives the same RUL: one validator, one model path.
        fresh = c.post("/api/v1/predict", json={"engine_id": "mq-1", "sensor_data": rows}).json()
        assert abs(fresh["predicted_rul"] - latest["rul"]) < 1e-3
    assert mqtt_app.subscriber.counters.duplicates == 5
    assert mqtt_app.subscriber.counters.refused == 0


def test_bad_messages_go_to_the_error_topic_and_the_subscriber_keeps_going(mqtt_app: MqttApp,
                                                                          tiny_bundle: Path) -> None:
    errors: list[dict[str, Any]] = []
    got = threading.Lock()

    def sink(e: dict[str, Any]) -> None:
        with got:
            errors.append(e)

    listener = subscribe_errors(mqtt_app.settings, sink)
    try:
        wait_for(lambda: listener.is_connected(), "the error-topic listener to connect")
        rows = readings(tiny_bundle, 25, engine=2)
        bad_field = dict(rows[0], s99=1.0)
        with MqttPublisher(mqtt_app.settings) as pub:
            pub.wait_connected()
            pub.publish_raw("prognos/engines/mq-2/readings", b"{not json")
            pub.publish("mq-2", [bad_field])
            pub.publish("bad id!", rows[:1])  # paho allows the space; the engine-id rule does not
            pub.publish("mq-2", rows[:2])
            field = next(f for f in rows[0] if f != "cycle")
            pub.publish("mq-2", [dict(rows[0], **{field: rows[0][field] + 0.01})])  # contradicts the stored cycle
            pub.publish("mq-2", rows[2:])
            pub.flush()
        wait_for(lambda: len(_stored(mqtt_app, "mq-2")) == 25, "the valid readings after the bad ones")
        wait_for(lambda: len(errors) >= 4, "four errors on prognos/errors")
    finally:
        listener.disconnect()
        listener.loop_stop()
    assert any("not valid JSON" in e["error"] for e in errors), errors
    assert any(e["status"] == 409 and "conflicts" in e["error"] for e in errors), errors
    assert any("s99" in e["error"] and e["status"] == 422 for e in errors), errors
    assert any("not a valid engine id" in e["error"] for e in errors), errors
    assert all(e["status"] < 500 for e in errors)
    assert mqtt_app.subscriber.counters.refused == len(errors)


def test_broker_restart_mid_stream_loses_no_acknowledged_reading(mqtt_app: MqttApp, mosquitto: Mosquitto,
                                                                tiny_bundle: Path) -> None:
    rows = readings(tiny_bundle, 120, engine=3)
    acked: list[int] = []
    lock = threading.Lock()
    restarted = threading.Event()

    with MqttPublisher(mqtt_app.settings) as pub:
        pub.wait_connected()
        for i, row in enumerate(rows):
            def ack(c: int = row["cycle"]) -> None:
                with lock:
                    acked.append(c)

            pub.publish("mq-3", row, on_ack=ack)
            if i == 60:
                # Mid-stream: messages are in flight publisher->broker and broker->subscriber.
                mosquitto.restart()
                restarted.set()
        pub.wait_connected(30)
        pub.flush(60)
    assert restarted.is_set()
    with lock:
        acknowledged = sorted(set(acked))
    assert len(acknowledged) == len(rows), "the publisher resends what was not acknowledged; all are acked"
    wait_for(lambda: set(acknowledged) <= set(_stored(mqtt_app, "mq-3")), "every acknowledged reading stored",
             timeout_s=90)
    stored = _stored(mqtt_app, "mq-3")
    assert len(stored) == len(set(stored)) == len(rows)  # stored once each
    assert mqtt_app.subscriber.counters.connects >= 2  # it reconnected by itself


def test_simulate_mqtt_into_serve_mqtt(mosquitto: Mosquitto, tmp_path: Path, tiny_bundle: Path) -> None:
    """The commands: ``prognos serve --mqtt`` ingests what ``prognos simulate --mqtt`` publishes."""
    import subprocess
    import sys

    from tests.scale.processes import Proc, env_for

    broker = {f"PROGNOS_{k.upper()}": str(v) for k, v in mosquitto.settings_overrides().items()}
    server = Proc("serve-mqtt", tmp_path / "serve", ["--bundle", str(tiny_bundle), "--mqtt"],
                  env_for(tmp_path / "serve", **broker))
    try:
        server.start().wait_ready()
        out = subprocess.run([sys.executable, "-m", "prognos.cli", "simulate", "--mqtt", "--synthetic", "2",
                              "--max-cycles", "30", "--speed", "0", "--prefix", "SIM-"],
                             env=env_for(tmp_path / "sim", **broker), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "published 60 readings of 2 engines" in out.stdout and "60 acknowledged" in out.stdout, out.stdout

        def totals() -> list[int]:
            with server.client() as c:
                pages = [c.get(f"/api/v1/engines/SIM-{i}/readings") for i in (1, 2)]
                return [p.json()["total"] if p.status_code == 200 else 0 for p in pages]

        wait_for(lambda: totals() == [30, 30], "60 readings of 2 engines stored through serve --mqtt")
    finally:
        server.stop()
