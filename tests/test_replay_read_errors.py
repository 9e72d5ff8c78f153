"""A read error stops replay only after what came before it is written (issue 14, item 4)."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from tests.conftest import make_event, write_jsonl


def _gzip_lines(start: int, count: int) -> bytes:
    return gzip.compress("".join(json.dumps(make_event(start + i)) + "\n" for i in range(count)).encode())


def truncated(start: int) -> bytes:
    data = _gzip_lines(start, 400)
    return data[: len(data) // 2]


def corrupt(start: int) -> bytes:
    data = bytearray(_gzip_lines(start, 400))
    middle = len(data) // 2
    data[middle:middle + 64] = b"\x00" * 64
    return bytes(data)


def not_gzip(start: int) -> bytes:
    return json.dumps(make_event(start)).encode() + b"\n"


def readable_lines(path: Path) -> int:
    """Lines a reader gets out of ``path`` before it fails, counted independently of replay."""
    count = 0
    try:
        with gzip.open(path, "rb") as stream:
            for _ in stream:
                count += 1
    except (OSError, EOFError, zlib.error):
        return count
    raise AssertionError(f"{path} reads without error")


@pytest.mark.parametrize("damage", [truncated, corrupt, not_gzip])
def test_good_file_then_damaged_gzip_keeps_what_was_read(cli, tmp_path: Path, store_dsn: str, damage) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [make_event(i) for i in range(1000)])
    bad = tmp_path / "damaged.jsonl.gz"
    bad.write_bytes(damage(10_000))
    readable = readable_lines(bad)

    result = cli("replay", "--store", store_dsn, str(good), str(bad), check=False)

    assert result.returncode != 0
    assert f"{bad} at line {readable + 1}" in result.stderr, result.stderr
    # Every line read is accounted for; a corrupt deflate stream can hand out garbage lines before it
    # is caught, and those are dead letters.
    stored = cli("query", "--store", store_dsn,
                 "SELECT (SELECT count() FROM events) + (SELECT count() FROM dead_letters)").stdout.split()[-1]
    assert int(stored) == 1000 + readable
    sources = cli("query", "--store", store_dsn, "--format", "csv",
                  "SELECT count() FROM events WHERE source LIKE '%good.jsonl:%'").stdout.split()[-1]
    assert sources == "1000"
