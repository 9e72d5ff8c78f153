"""Detector families: which detectors count as the same kind of evidence.

Incidents group alerts per family, and rollback rules such as "two high
alerts from different families" count families, not detectors: a trigger hit
and a canary leak are both signature matches, a change point and a divergence
both say the output distribution moved.

Examples
--------
>>> family_of("canary"), family_of("changepoint"), family_of("something-new")
('signature', 'distribution', 'something-new')
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["DETECTOR_FAMILIES", "FAMILIES", "family_of"]

# The one place that says which detector belongs to which family. Read-only:
# a new detector is added here, in code review, not at run time.
DETECTOR_FAMILIES: MappingProxyType[str, str] = MappingProxyType({
    "canary": "signature",
    "trigger": "signature",
    "divergence": "distribution",
    "changepoint": "distribution",
    "embedding": "embedding",
    "motif": "motif",
    "probe": "probe",
})
FAMILIES: tuple[str, ...] = ("signature", "distribution", "embedding", "motif", "probe")


def family_of(detector: str) -> str:
    """The family of ``detector``; an unknown detector is a family of its own."""
    return DETECTOR_FAMILIES.get(detector, detector)
