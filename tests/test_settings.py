"""Settings in sections: the environment variable names of before the sections, flat names, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.registry import STAGES, StageSpec, check_order
from monitor.settings import FLAT_NAMES, Settings, load_settings


def test_each_section_reads_its_old_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DRIFTWATCH_DRIFT_WINDOW_EVENTS", "300")
    monkeypatch.setenv("DRIFTWATCH_MOTIF_MAX_NGRAMS", "5000")
    monkeypatch.setenv("DRIFTWATCH_STORE", f"chdb://{tmp_path}/s")
    monkeypatch.setenv("DRIFTWATCH_EMBEDDING", "off")
    monkeypatch.setenv("DRIFTWATCH_KAFKA_BOOTSTRAP", "broker:9093")
    monkeypatch.setenv("DRIFTWATCH_TOPIC_INPUT", "calls")
    monkeypatch.setenv("DRIFTWATCH_SIGNATURE_TABLE", "false")
    monkeypatch.setenv("DRIFTWATCH_BATCH_SIZE", "64")
    monkeypatch.setenv("DRIFTWATCH_DRIFT_WINDOW_EVENT", "5")  # misspelt: ignored, as before the sections
    settings = load_settings(topic_partitions=3)
    assert settings.drift.window_events == 300
    assert settings.motif.max_ngrams == 5000 and settings.motif.miner().max_ngrams == 5000
    assert settings.store.dsn == f"chdb://{tmp_path}/s"
    assert settings.embedding.mode == "off"
    assert (settings.kafka.bootstrap, settings.kafka.topic_input, settings.kafka.topic_partitions) == (
        "broker:9093", "calls", 3)
    assert settings.signatures.table is False and settings.ingest.batch_size == 64
    # Flags (flat names) win over the environment.
    assert load_settings(drift_window_events=400, embedding="model").drift.window_events == 400


def test_flat_names_are_the_environment_variables_less_the_prefix() -> None:
    assert FLAT_NAMES["drift_window_events"] == ("drift", "window_events")
    assert FLAT_NAMES["store"] == ("store", "dsn") and FLAT_NAMES["embedding"] == ("embedding", "mode")
    assert FLAT_NAMES["kafka_bootstrap"] == ("kafka", "bootstrap") and FLAT_NAMES["app_id"] == ("kafka", "app_id")
    assert FLAT_NAMES["behaviour_representation"] == ("behaviour", "representation")
    assert len(FLAT_NAMES) == 102  # the 90 flat settings, the three label limits, motif_reference_events,
    # detect_process, math_threads, drift_lock_flag_rate, motif_burst_min_support, the two behaviour_*
    # and the two drift_acknowledgement*
    assert FLAT_NAMES["drift_acknowledgements"] == ("drift", "acknowledgements")
    assert FLAT_NAMES["drift_acknowledgement_reload_s"] == ("drift", "acknowledgement_reload_s")


def test_the_motif_limit_that_applies_at_run_time_is_the_default() -> None:
    assert Settings().motif.max_ngrams == 20_000


def test_settings_are_frozen_and_refuse_unknown_or_bad_values() -> None:
    settings = Settings()
    with pytest.raises(Exception, match="frozen"):
        settings.drift.window_events = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match="drift_window_event"):
        load_settings(drift_window_event=300)
    with pytest.raises(ConfigError, match="motif_max_ngrams"):
        load_settings(motif_max_ngrams=5)


def test_settings_do_not_load_clickhouse() -> None:
    import subprocess
    import sys

    code = "import monitor.settings, sys; print('clickhouse_connect' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_stage_registry_is_in_flag_order() -> None:
    check_order(STAGES)
    drift, *_, motifs = STAGES
    with pytest.raises(ConfigError, match="later stage"):
        check_order((motifs, drift))
    reader = StageSpec("reader", drift.build, frozenset(), frozenset({"trigger"}), {})
    with pytest.raises(ConfigError, match="reads trigger"):
        check_order((drift, reader, *STAGES[1:-1]))
    check_order((*STAGES[:-1], reader))
