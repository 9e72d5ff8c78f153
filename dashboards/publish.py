"""Push the dashboards and alert rules to a Grafana server with grafana-client.

What it sends, in order (Grafana HTTP API):

1. ``GET /api/folders/driftwatch``; on 404, ``POST /api/folders`` to create it;
2. per dashboard, ``POST /api/dashboards/db`` with ``overwrite: true`` into that folder;
3. unless disabled, ``PUT /api/v1/provisioning/folder/driftwatch/rule-groups/driftwatch``
   with every alert rule (the group is replaced as a whole).

Publishing twice gives the same result: dashboards and rules have fixed uids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.alert_rules import FOLDER_TITLE, FOLDER_UID, RULE_GROUP, AlertRule, rule_group
from dashboards.model import DATASOURCE_UID
from monitor.errors import ConfigError, DriftwatchError, PublishError
from monitor.redact import redact_text

__all__ = ["PublishError", "PublishReport", "publish"]

logger = logging.getLogger(__name__)


@dataclass
class PublishReport:
    """What :func:`publish` did."""

    folder_created: bool = False
    dashboards: list[str] = field(default_factory=list)
    alert_rules: int = 0

    def describe(self) -> str:
        folder = "created" if self.folder_created else "exists"
        return (f"folder {FOLDER_UID} ({folder}); dashboards: {', '.join(self.dashboards) or 'none'}; "
                f"alert rules: {self.alert_rules}")


def _with_datasource(board: dict[str, Any], datasource_uid: str) -> dict[str, Any]:
    """``board`` with its ${datasource} variable defaulting to ``datasource_uid``, and no numeric id."""
    variables = []
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource" and datasource_uid != DATASOURCE_UID:
            variable = {**variable, "current": {"text": datasource_uid, "value": datasource_uid}}
        variables.append(variable)
    return {**board, "id": None, "templating": {**board.get("templating", {}), "list": variables}}


def publish(url: str, token: str, boards: Sequence[dict[str, Any]], rules: Sequence[AlertRule], *,
            datasource_uid: str = DATASOURCE_UID, timeout_s: float = 30.0) -> PublishReport:
    """Create the folder if needed, then push ``boards`` and ``rules`` to the Grafana at ``url``.

    ``token`` is a service-account token (sent as ``Authorization: Bearer``).
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"Grafana URL must start with http:// or https://; got {redact_text(url)!r}")
    if not token:
        raise ConfigError("a Grafana service-account token is required (--token or GRAFANA_TOKEN)")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    report = PublishReport()
    with _errors(url, f"folder {FOLDER_UID}"):
        try:
            api.folder.get_folder(FOLDER_UID)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
            report.folder_created = True
    for board in boards:
        with _errors(url, f"dashboard {board.get('uid')}"):
            api.dashboard.update_dashboard({
                "dashboard": _with_datasource(board, datasource_uid), "folderUid": FOLDER_UID,
                "overwrite": True, "message": "driftwatch dashboards publish"})
        report.dashboards.append(str(board.get("uid")))
    if rules:
        with _errors(url, f"alert rule group {RULE_GROUP}"):
            api.alertingprovisioning.update_rule_group(FOLDER_UID, RULE_GROUP, rule_group(rules, datasource_uid))
        report.alert_rules = len(rules)
    logger.info("published to grafana url=%s %s", redact_text(url), report.describe())
    return report


class _errors:
    """Turn grafana-client's and the HTTP stack's exceptions into :class:`PublishError`."""

    def __init__(self, url: str, what: str) -> None:
        self.url, self.what = redact_text(url), what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, DriftwatchError):
            return
        if isinstance(exc, GrafanaException):
            status = f"HTTP {exc.status_code}" if exc.status_code else "no response"
            raise PublishError(f"Grafana at {self.url} refused {self.what} ({status}): "
                               f"{redact_text(str(exc.message))}") from exc
        raise PublishError(f"cannot reach Grafana at {self.url} for {self.what}: {redact_text(str(exc))}") from exc
