"""Grafana provisioning documents: the ClickHouse datasource and the dashboard provider.

Grafana reads ``provisioning/datasources/*.yaml`` and
``provisioning/dashboards/*.yaml`` at start. Secrets and hosts are left as
``${DRIFTWATCH_GRAFANA_...}`` references, which Grafana fills from its
environment when it loads the datasource file.

Examples
--------
>>> datasources_file()["datasources"][0]["jsonData"]["protocol"]
'http'
"""

from __future__ import annotations

from typing import Any

from dashboards.alert_rules import FOLDER_TITLE
from dashboards.model import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID

__all__ = ["DASHBOARDS_PATH", "dashboard_providers_file", "datasources_file"]

# Where the provider looks for the dashboard JSON inside the Grafana container.
DASHBOARDS_PATH = "/var/lib/grafana/dashboards/driftwatch"


def datasources_file() -> dict[str, Any]:
    """The ClickHouse datasource, read-only user, HTTP protocol (as driftwatch's own store DSN)."""
    return {"apiVersion": 1, "datasources": [{
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "editable": False,
        "jsonData": {
            "host": "${DRIFTWATCH_GRAFANA_CH_HOST}",
            "port": 8123,
            "protocol": "http",
            "secure": False,
            "username": "${DRIFTWATCH_GRAFANA_CH_USER}",
            "defaultDatabase": "${DRIFTWATCH_GRAFANA_CH_DATABASE}",
            "dialTimeout": "10",
            "queryTimeout": "60",
        },
        "secureJsonData": {"password": "${DRIFTWATCH_GRAFANA_CH_PASSWORD}"},
    }]}


def dashboard_providers_file(path: str = DASHBOARDS_PATH) -> dict[str, Any]:
    """A file provider that loads every JSON under ``path`` into the driftwatch folder."""
    return {"apiVersion": 1, "providers": [{
        "name": "driftwatch",
        "orgId": 1,
        # By title, as the alert-rule file names its folder: both land in the same folder.
        "folder": FOLDER_TITLE,
        "type": "file",
        "disableDeletion": False,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 60,
        "options": {"path": path, "foldersFromFilesStructure": False},
    }]}
