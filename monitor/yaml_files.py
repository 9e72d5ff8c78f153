"""Reading the YAML (or JSON) configuration files: signatures, policies, probe prompts.

Every configuration file a user hands us goes through here, so that a hostile
or broken one fails the same way: a :class:`~monitor.errors.ConfigError` (or
the error class the caller names) that says which file and why, never a
traceback. What is refused:

- a file over ``MAX_CONFIG_BYTES``;
- bytes that are not UTF-8 (the error gives the byte offset and line);
- nesting deeper than ``MAX_DEPTH`` (``[[[[...`` ten thousand deep would
  otherwise exhaust the parser's recursion);
- a document whose aliases expand past ``MAX_NODES`` nodes (a "billion
  laughs" bomb: nine anchors of nine aliases each are 9**9 nodes once walked).

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.yaml"
>>> _ = path.write_text("rules: []\\n")
>>> read_yaml(path, "policy")
{'rules': []}
>>> parse_yaml_text("a: " + "[" * 500 + "]" * 500, "policy file p.yaml")
Traceback (most recent call last):
...
monitor.errors.ConfigError: policy file p.yaml: nesting deeper than 64 levels at line 1, column 67
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError, DriftwatchError

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_NODES", "decode_config", "parse_json_text", "parse_yaml_text",
           "read_config_text", "read_yaml"]

MAX_CONFIG_BYTES = 16 << 20
MAX_DEPTH = 64
MAX_NODES = 1_000_000


class _TooComplex(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that counts depth and the nodes the document expands to, aliases included."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded = 0
        self._weights: dict[int, int] = {}  # id(node) -> nodes it expands to; nodes live as long as the loader

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._count(self._weights.get(id(node), 1), node)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _TooComplex(f"nesting deeper than {MAX_DEPTH} levels at line {mark.line + 1}, "
                              f"column {mark.column + 1}")
        before = self._expanded
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1, node)
        self._weights[id(node)] = self._expanded - before
        return node

    def _count(self, nodes: int, node: Any) -> None:
        self._expanded += nodes
        if self._expanded > MAX_NODES:
            raise _TooComplex(f"expands to more than {MAX_NODES:,} nodes (YAML aliases?) by line "
                              f"{node.start_mark.line + 1}")


def decode_config(data: bytes, where: str, error: type[DriftwatchError] = ConfigError, *,
                  max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); ``error`` naming the first bad byte otherwise."""
    if len(data) > max_bytes:
        raise error(f"{where} is over {max_bytes:,} bytes, the limit for this kind of file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{where} is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                    f"(line {line}): {exc.reason}") from None


def read_config_text(path: str | Path, kind: str, error: type[DriftwatchError] = ConfigError) -> str:
    """The text of the ``kind`` file at ``path``, size-limited and strictly UTF-8."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {kind} file {path}: {exc.strerror or exc}") from exc
    return decode_config(data, f"{kind} file {path}", error)


def parse_yaml_text(text: str, where: str, error: type[DriftwatchError] = ConfigError) -> Any:
    """The YAML (or JSON) document in ``text``, with the depth and expansion limits above."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _TooComplex as exc:
        raise error(f"{where}: {exc}") from None
    except RecursionError:  # belt and braces: the limits above should stop it first
        raise error(f"{where}: nested too deeply to parse") from None
    except yaml.YAMLError as exc:
        raise error(f"{where} is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def parse_json_text(text: str, where: str, error: type[DriftwatchError] = ConfigError) -> Any:
    """The JSON value in ``text``; deep nesting and bad JSON raise ``error`` naming ``where``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply to parse") from None
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not JSON: {exc}") from exc


def read_yaml(path: str | Path, kind: str) -> Any:
    """The parsed document at ``path``; errors say which ``kind`` of file and why (JSON is YAML)."""
    return parse_yaml_text(read_config_text(path, kind), f"{kind} file {path}")
