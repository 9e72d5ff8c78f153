"""The small vocabulary dashboards are written in: panels, variables, layout.

A :class:`Panel` carries its SQL *and* the columns that SQL must return, so
the SQL check (:mod:`dashboards.sqlcheck`) can run every panel against a real
ClickHouse and compare. :class:`Board` lays panels out on Grafana's
24-column grid and renders the JSON model Grafana stores.

Queries target the ``grafana-clickhouse-datasource`` plugin in SQL-editor
mode: ``editorType: "sql"``, ``rawSql`` holding the query with the plugin's
macros (``$__timeFilter(col)``, ``$__timeInterval(col)``, ...), ``format`` 0
(time series: the plugin turns a long result, time plus string columns, into
one series per string value) or 1 (table), and ``queryType`` the matching
``timeSeries``/``table`` mode of the editor.

Examples
--------
>>> p = Panel("Alerts", "stat", "SELECT count() AS alerts FROM alerts", ("alerts",))
>>> board = Board("driftwatch-x", "X", (p,)).to_json()
>>> board["panels"][0]["targets"][0]["rawSql"]
'SELECT count() AS alerts FROM alerts'
>>> board["panels"][0]["gridPos"]
{'h': 6, 'w': 6, 'x': 0, 'y': 0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "Annotation",
    "Board",
    "Panel",
    "QueryVariable",
    "datasource_ref",
]

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
# The uid the provisioned datasource gets; dashboards reach it through the
# ${datasource} variable, so another ClickHouse datasource can be picked too.
DATASOURCE_UID = "driftwatch-clickhouse"
DATASOURCE_NAME = "driftwatch ClickHouse"
SCHEMA_VERSION = 41  # Grafana 11/12 dashboard JSON
GRID_COLUMNS = 24
# Format values of the plugin's backend (grafana-plugin-sdk-go sqlutil.FormatQueryOption).
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1

PanelType = Literal["timeseries", "table", "stat", "barchart"]
_SIZES: dict[str, tuple[int, int]] = {"stat": (6, 6), "timeseries": (12, 8), "table": (12, 8), "barchart": (12, 8)}


def datasource_ref(uid: str = "${datasource}") -> dict[str, str]:
    return {"type": DATASOURCE_TYPE, "uid": uid}


@dataclass(frozen=True)
class Panel:
    """One panel: what it shows, its SQL and the columns the SQL returns.

    Parameters
    ----------
    title
        Panel title.
    type
        Grafana visualization: ``timeseries``, ``table``, ``stat`` or ``barchart``.
    sql
        The query, with the plugin's macros and ``${var}`` template variables.
    columns
        Names of the result columns, in order; checked against ClickHouse.
    description
        What an analyst reads on hover.
    unit
        Grafana unit id of the values (``short``, ``reqps``, ``ms``, ...).
    width, height
        Grid size; ``None`` takes the type's default.
    stacked, bars
        Time series style: stacked, and bars instead of lines.
    thresholds
        Values at which the colour turns orange, then red (stat panels, lag).

    Examples
    --------
    >>> p = Panel("Lag", "timeseries", "SELECT ...", ("time", "partition", "lag"), thresholds=(10, 100))
    >>> p.size(), p.time_series
    ((12, 8), True)
    """

    title: str
    type: PanelType
    sql: str
    columns: tuple[str, ...]
    description: str = ""
    unit: str = "short"
    width: int | None = None
    height: int | None = None
    stacked: bool = False
    bars: bool = False
    thresholds: tuple[float, ...] = field(default=())

    @property
    def time_series(self) -> bool:
        return self.type in ("timeseries",)

    def size(self) -> tuple[int, int]:
        width, height = _SIZES[self.type]
        return (self.width or width, self.height or height)


@dataclass(frozen=True)
class QueryVariable:
    """A template variable filled by a ClickHouse query (``SELECT DISTINCT ...``).

    ``multi`` variables are used in SQL as ``IN (${name:singlequote})``; single
    ones as ``'${name}'``.
    """

    name: str
    label: str
    sql: str
    multi: bool = True


def _target(panel: Panel) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": datasource_ref(),
        "editorType": "sql",
        "queryType": "timeSeries" if panel.time_series else "table",
        "format": FORMAT_TIME_SERIES if panel.time_series else FORMAT_TABLE,
        "rawSql": panel.sql,
    }


def _thresholds(panel: Panel) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    colors = ("orange", "red")
    steps += [{"color": colors[min(i, 1)], "value": v} for i, v in enumerate(panel.thresholds)]
    return {"mode": "absolute", "steps": steps}


def _options(panel: Panel) -> dict[str, Any]:
    if panel.type == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "orientation": "auto", "textMode": "auto", "colorMode": "value", "graphMode": "none",
                "justifyMode": "auto", "wideLayout": True, "showPercentChange": False,
                "percentChangeColorMode": "standard"}
    if panel.type == "table":
        return {"frameIndex": 0, "showHeader": True, "cellHeight": "sm"}
    legend = {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []}
    if panel.type == "barchart":
        return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}, "orientation": "auto",
                "showValue": "auto", "stacking": "normal" if panel.stacked else "none", "xTickLabelRotation": 0,
                "barWidth": 0.9, "groupWidth": 0.7, "fullHighlight": False, "xTickLabelSpacing": 0}
    return {"legend": legend, "tooltip": {"mode": "multi", "sort": "desc"}}


def _custom(panel: Panel) -> dict[str, Any]:
    if panel.type != "timeseries":
        return {}
    return {"drawStyle": "bars" if panel.bars else "line", "lineWidth": 1,
            "fillOpacity": 60 if panel.bars else 10, "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"}}


def render_panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "color": {"mode": "palette-classic"}}
    if panel.thresholds:
        defaults["thresholds"] = _thresholds(panel)
        defaults["color"] = {"mode": "thresholds"}
    custom = _custom(panel)
    if custom:
        defaults["custom"] = custom
    return {
        "id": panel_id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": datasource_ref(),
        "gridPos": grid,
        "targets": [_target(panel)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _options(panel),
    }


def _layout(panels: Sequence[Panel]) -> list[dict[str, int]]:
    """Fill rows left to right; a panel that does not fit starts a new row."""
    grids, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        width, height = panel.size()
        if x + width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        grids.append({"h": height, "w": width, "x": x, "y": y})
        x, row_height = x + width, max(row_height, height)
    return grids


def _datasource_variable() -> dict[str, Any]:
    return {"type": "datasource", "name": "datasource", "label": "ClickHouse", "query": DATASOURCE_TYPE,
            "current": {"text": DATASOURCE_NAME, "value": DATASOURCE_UID}, "hide": 0, "refresh": 1,
            "regex": "", "options": []}


def _query_variable(variable: QueryVariable) -> dict[str, Any]:
    # The plugin accepts a plain SQL string as variable query (its legacy form, read by every 4.x version).
    return {"type": "query", "name": variable.name, "label": variable.label, "datasource": datasource_ref(),
            "query": variable.sql, "refresh": 2, "sort": 1,
            "multi": variable.multi, "includeAll": variable.multi, "regex": "", "options": [],
            "current": {"text": ["All"], "value": ["$__all"]} if variable.multi else {"text": "", "value": ""}}


@dataclass(frozen=True)
class Annotation:
    """Markers drawn on every time series of a dashboard (change points, say).

    The SQL returns ``time``, ``timeEnd``, ``text`` and ``tags``, the columns
    the plugin's annotation support reads.
    """

    name: str
    sql: str
    color: str = "red"
    columns: tuple[str, ...] = ("time", "timeEnd", "text", "tags")

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "enable": True, "iconColor": self.color, "datasource": datasource_ref(),
                "target": {"refId": "Anno", "editorType": "sql", "format": FORMAT_TABLE, "rawSql": self.sql}}


@dataclass(frozen=True)
class Board:
    """A dashboard as code: its panels, variables and annotations.

    :meth:`to_json` renders the JSON model Grafana stores; panels are laid
    out left to right on the 24-column grid.

    Examples
    --------
    >>> wide = Panel("T", "table", "SELECT 1 AS one", ("one",), width=24)
    >>> board = Board("driftwatch-demo", "Demo", (wide, wide))
    >>> board.slug, [p["gridPos"]["y"] for p in board.to_json()["panels"]]
    ('demo', [0, 8])
    """

    uid: str
    title: str
    panels: tuple[Panel, ...]
    description: str = ""
    variables: tuple[QueryVariable, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    time_from: str = "now-24h"
    refresh: str = "1m"

    @property
    def slug(self) -> str:
        return self.uid.removeprefix("driftwatch-")

    def to_json(self) -> dict[str, Any]:
        builtin = {"builtIn": 1, "name": "Annotations & Alerts", "enable": True, "hide": True,
                   "iconColor": "rgba(0, 211, 255, 1)", "type": "dashboard",
                   "datasource": {"type": "grafana", "uid": "-- Grafana --"}}
        grids = _layout(self.panels)
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["driftwatch"],
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "timezone": "utc",
            "templating": {"list": [_datasource_variable(), *(_query_variable(v) for v in self.variables)]},
            "annotations": {"list": [builtin, *(a.to_json() for a in self.annotations)]},
            "links": [{"title": "driftwatch", "type": "dashboards", "tags": ["driftwatch"], "asDropdown": True,
                       "icon": "external link", "includeVars": True, "keepTime": True, "targetBlank": False,
                       "tooltip": "", "url": ""}],
            "panels": [render_panel(p, i + 1, g) for i, (p, g) in enumerate(zip(self.panels, grids, strict=True))],
        }
