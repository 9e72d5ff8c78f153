"""The SOC policy applied to new alerts: triage, incidents, rollback, notify.

One :class:`SocEngine` per process. ``replay`` calls :meth:`SocEngine.handle`
once at the end with every alert it raised; the streaming worker calls it
after each sink flush with the alerts that flush wrote
(``ClickHouseSink.drain_new_alerts``) and publishes the returned decisions
to the ``driftwatch-rollback`` topic (:meth:`RollbackDecision.to_bytes`).

Examples
--------
>>> from monitor.policy.config import default_policy
>>> engine = SocEngine(default_policy())
>>> outcome = engine.evaluate([])
>>> outcome.incidents, outcome.decisions
([], [])
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from monitor.alerts import Alert
from monitor.errors import ConfigError
from monitor.policy.alerting import AlertTriage, TriageResult
from monitor.policy.config import Policy, load_policy
from monitor.policy.incidents import Incident, group_incidents, record_suppressed, upsert_incidents
from monitor.policy.rollback import ROLLBACK_COLUMNS, RollbackDecision, RollbackMonitor
from monitor.policy.webhook import WebhookNotifier
from monitor.settings import Settings
from monitor.storage.store import Store

logger = logging.getLogger(__name__)

__all__ = ["SocEngine", "SocOutcome", "engine_from_settings", "write_decisions"]


@dataclass
class SocOutcome:
    """What the policy made of one batch of alerts."""

    triage: TriageResult = field(default_factory=TriageResult)
    incidents: list[Incident] = field(default_factory=list)
    decisions: list[RollbackDecision] = field(default_factory=list)


class SocEngine:
    """Triage, group, evaluate rollback rules, and optionally notify.

    Parameters
    ----------
    policy
        The validated policy.
    notifier
        Where notifications go (``None``: nowhere).
    """

    def __init__(self, policy: Policy, *, notifier: WebhookNotifier | None = None) -> None:
        self.policy = policy
        self.triage = AlertTriage(policy)
        self.rollback = RollbackMonitor(policy)
        self.notifier = notifier

    def evaluate(self, alerts: Sequence[Alert]) -> SocOutcome:
        """The pure part: no store, no network."""
        triage = self.triage.process(alerts)
        kept = triage.kept
        return SocOutcome(triage=triage,
                          incidents=group_incidents(kept, window_ms=self.policy.incident_window_ms),
                          decisions=self.rollback.observe(kept))

    def handle(self, store: Store, alerts: Sequence[Alert], *,
               notify_ids: Collection[str] | None = None) -> SocOutcome:
        """Evaluate, write incidents, suppressions and new decisions, then notify.

        ``notify_ids`` limits alert notifications to those ids (a replay passes the alerts it stored
        first, so replaying a file twice pages nobody twice); decisions are notified when first written.
        """
        outcome = self.evaluate(alerts)
        outcome.incidents = upsert_incidents(store, outcome.incidents)
        record_suppressed(store, outcome.triage.suppressed)
        fresh = write_decisions(store, outcome.decisions)
        for decision in fresh:
            logger.info("rollback recommended model=%s version=%s rule=%s alerts=%d",
                        decision.model_id, decision.model_version, decision.rule, len(decision.alert_ids))
        if self.notifier is not None:
            for alert in outcome.triage.notify:
                if notify_ids is not None and alert.alert_id not in notify_ids:
                    continue
                self.notifier.send({"kind": "alert", "alert": alert.to_json()})
            for decision in fresh:
                self.notifier.send({"kind": "rollback", "decision": decision.to_json()})
        return outcome


def write_decisions(store: Store, decisions: Sequence[RollbackDecision]) -> list[RollbackDecision]:
    """Write decisions not stored yet; return those written."""
    unique = list({d.decision_id: d for d in decisions}.values())
    seen = store.existing_ids("rollback_decisions", "decision_id", (d.decision_id for d in unique))
    fresh = [d for d in unique if d.decision_id not in seen]
    if fresh:
        rows = [d.to_row() for d in fresh]
        store.insert("rollback_decisions", [list(column) for column in zip(*rows, strict=True)], ROLLBACK_COLUMNS)
    return fresh


def engine_from_settings(settings: Settings) -> SocEngine:
    """The engine for ``settings``: its policy file and, when configured, the webhook."""
    notifier = None
    if settings.soc.webhook_url:
        if settings.soc.webhook_secret is None:
            raise ConfigError("webhook_url is set but webhook_secret is not (DRIFTWATCH_WEBHOOK_SECRET)")
        notifier = WebhookNotifier(settings.soc.webhook_url, settings.soc.webhook_secret.get_secret_value())
    return SocEngine(load_policy(settings.soc.policy), notifier=notifier)
