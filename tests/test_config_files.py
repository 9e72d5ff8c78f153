"""Hostile configuration files fail with a ConfigError naming the file and the reason, never a traceback."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.durations import MAX_SINCE_MS, parse_duration, parse_since
from monitor.errors import ConfigError, DriftwatchError, InputFileError
from monitor.gate.probes import load_prompts
from monitor.policy.config import load_policy
from monitor.signature_files import load_signatures
from monitor.yaml_files import MAX_CONFIG_BYTES

LOADERS: dict[str, tuple[Callable[[Path], Any], type[DriftwatchError]]] = {
    "policy": (load_policy, ConfigError),
    "signatures": (load_signatures, ConfigError),
    "prompts": (load_prompts, InputFileError),
}

NOT_UTF8 = {
    "latin-1": ("rules: []\n# caf\xe9\n".encode("latin-1"), 15),
    "lone-continuation": (b"signatures:\n  - id: \x80x\n", 20),
    "utf-16": ("rules: []\n".encode("utf-16"), 0),
    "truncated-sequence": (b"a: 1\nb: \xe2\x82\n", 8),
    "overlong": (b"x: \xc0\xaf\n", 3),
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("variant", NOT_UTF8)
def test_non_utf8_files_name_the_byte_offset(tmp_path: Path, loader: str, variant: str) -> None:
    data, offset = NOT_UTF8[variant]
    path = tmp_path / f"{variant}.yaml"
    path.write_bytes(data)
    load, error = LOADERS[loader]
    with pytest.raises(error) as caught:
        load(path)
    assert str(path) in str(caught.value) and "not UTF-8" in str(caught.value)
    assert f"offset {offset}" in str(caught.value)


DEEP = {
    "flow-sequences": "[" * 10_000 + "]" * 10_000,
    "flow-mappings": "{a: " * 10_000 + "1" + "}" * 10_000,
    "block-mappings": "".join(" " * i + "k:\n" for i in range(2_000)) + " " * 2_000 + "v\n",
    "json-arrays": '{"signatures": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "unclosed": "[" * 10_000,
}


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize("variant", DEEP)
def test_deeply_nested_files_are_refused(tmp_path: Path, loader: str, variant: str) -> None:
    path = tmp_path / f"{variant}.yaml"
    path.write_text(DEEP[variant], encoding="utf-8")
    load, error = LOADERS[loader]
    with pytest.raises(error) as caught:
        load(path)
    assert str(path) in str(caught.value)


def _laughs(levels: int, width: int, mapping: bool) -> str:
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        refs = [f"*l{level - 1}"] * width
        items = [f"k{i}: {r}" for i, r in enumerate(refs)] if mapping else refs
        body = ("{%s}" if mapping else "[%s]") % ", ".join(items)
        lines.append(f"l{level}: &l{level} {body}")
    return "\n".join(lines) + "\n"


BOMBS = {
    "billion-laughs": _laughs(9, 9, mapping=False),
    "mapping-laughs": _laughs(9, 9, mapping=True),
    "wide-and-shallow": _laughs(4, 1_100, mapping=False),
    "inside-a-rule": "x: &x [" + ", ".join(["1"] * 1000) + "]\n"
                     "y: &y [" + ", ".join(["*x"] * 1000) + "]\nrollback: {rules: [{name: *y}]}\n",
}


@pytest.mark.parametrize("loader", ["policy", "signatures"])
@pytest.mark.parametrize("variant", BOMBS)
def test_alias_bombs_are_refused_without_blowing_memory(tmp_path: Path, loader: str, variant: str) -> None:
    path = tmp_path / f"{variant}.yaml"
    path.write_text(BOMBS[variant], encoding="utf-8")
    load, error = LOADERS[loader]
    tracemalloc.start()
    try:
        with pytest.raises(error, match="expands to more than"):
            load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20


def test_aliases_within_the_limit_still_load(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rollback:\n  rules:\n    - &r {name: a, min_alerts: 2}\n    - {<<: *r, name: b}\n",
                    encoding="utf-8")
    assert [(r.name, r.min_alerts) for r in load_policy(path).rollback.rules] == [("a", 2), ("b", 2)]


BAD_WINDOWS = ["99999999999999999999d", "367d", "0s", "0", -5, ".inf", ".nan", "1" + "0" * 400 + "s",
               10**30, "9" * 400 + "ms"]


@pytest.mark.parametrize("key", ["incidents: {window: %s}", "rollback: {window: %s}", "alerts: {dedup_window: %s}"])
@pytest.mark.parametrize("value", BAD_WINDOWS, ids=[str(v)[:24] for v in BAD_WINDOWS])
def test_policy_durations_are_bounded(tmp_path: Path, key: str, value: object) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(key % (value,) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert str(path) in str(caught.value) and "window" in str(caught.value)


@pytest.mark.parametrize("instant", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "1899-12-31T23:59:59Z",
                                     "2300-01-01T00:00:00+00:00"])
def test_maintenance_windows_stay_inside_datetime64(tmp_path: Path, instant: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(f"alerts:\n  suppress:\n    - {{start: '2026-01-01T00:00:00Z', end: '{instant}'}}\n"
                    f"    - {{start: '{instant}', end: '2026-01-01T00:00:00Z'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="between 1900-01-01 and 2299-12-31"):
        load_policy(path)


@pytest.mark.parametrize("text", ["99999999999d", "36501d", "1" + "0" * 400 + "d", "0d", "9999-01-01T00:00:00Z",
                                  "yesterday", ""])
def test_since_is_bounded(text: str) -> None:
    with pytest.raises(ConfigError, match="--since"):
        parse_since(text, now_ms=1_800_000_000_000)


def test_since_accepts_durations_and_times() -> None:
    now = 1_800_000_000_000
    assert parse_since("7d", now_ms=now) == now - 7 * 86_400_000
    assert parse_since("36500d", now_ms=now) == now - MAX_SINCE_MS
    assert parse_since("2026-11-01T00:00:00Z", now_ms=now) == 1_793_491_200_000
    assert parse_duration("400d", maximum_ms=MAX_SINCE_MS) == 400 * 86_400_000


@pytest.mark.parametrize("loader", ["policy", "signatures"])
def test_oversized_config_files_are_refused_before_parsing(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as out:
        out.truncate(MAX_CONFIG_BYTES + 10)  # sparse: 16 MiB of NUL without writing them
    load, error = LOADERS[loader]
    with pytest.raises(error, match="over 16,777,216 bytes"):
        load(path)
