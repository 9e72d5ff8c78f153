"""Every dashboard driftwatch ships, built from the storage schema."""

from __future__ import annotations

from dashboards.canaries import canaries_and_triggers
from dashboards.fleet import fleet_overview
from dashboards.model import Board
from dashboards.model_drilldown import model_drilldown
from dashboards.service_health import service_health
from dashboards.tables import tables

__all__ = ["boards"]


def boards() -> tuple[Board, ...]:
    """The dashboards, in menu order."""
    t = tables()
    return (fleet_overview(t), model_drilldown(t), canaries_and_triggers(t), service_health(t))
