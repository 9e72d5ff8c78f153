"""Detector families: which detectors count as the same kind of evidence.

Incidents group alerts per family, and rollback rules such as "two high
alerts from different families" count families, not detectors: a trigger hit
and a canary leak are both signature matches, a change point and a divergence
both say the output distribution moved. Each stage declares its detectors'
families in :data:`monitor.registry.STAGES`; this module reads them there.

Examples
--------
>>> family_of("canary"), family_of("changepoint"), family_of("something-new")
('signature', 'distribution', 'something-new')
"""

from __future__ import annotations

from monitor.registry import DETECTOR_FAMILIES

__all__ = ["DETECTOR_FAMILIES", "family_of"]


def family_of(detector: str) -> str:
    """The family of ``detector``; a detector no stage declares (an old alert's) is a family of its own."""
    return DETECTOR_FAMILIES.get(detector, detector)
