"""Online change-point detectors for one stream of floats, behind one protocol.

Every detector follows :class:`~detectors.changepoint.base.ChangePointDetector`,
is built as a :class:`~detectors.changepoint.base.DetectorFactory`, and
works with its default constructor on unscaled input: it standardises
itself from a warm-up and calibrates its threshold for a target ARL0 (mean
updates between false alarms, default 10,000). ``DETECTORS`` maps a name to
each class; external evaluations and the generic test suite discover
detectors through it.

Examples
--------
>>> isinstance(DETECTORS, dict), sorted(DETECTORS)
(True, ['adwin', 'bocpd', 'cusum', 'kswin', 'page_hinkley'])
>>> detector = DETECTORS["cusum"]()
>>> for x in [3.0, 3.1, 2.9] * 100:
...     detector.update(x)
>>> detector.ready, detector.drift_detected
(True, False)
"""

from __future__ import annotations

from detectors.changepoint.adwin import ADWIN
from detectors.changepoint.base import ChangePointDetector, Detection, DetectorFactory, WarmupDetector
from detectors.changepoint.bocpd import BOCPD
from detectors.changepoint.calibration import DEFAULT_ARL0, fleet_arl0
from detectors.changepoint.cusum import CUSUM
from detectors.changepoint.kswin import KSWIN
from detectors.changepoint.page_hinkley import PageHinkley

__all__ = ["ADWIN", "BOCPD", "CUSUM", "DEFAULT_ARL0", "DETECTORS", "KSWIN", "ChangePointDetector",
           "Detection", "DetectorFactory", "PageHinkley", "WarmupDetector", "fleet_arl0"]

# A plain dict, as the contract with external evaluations says; nothing in
# driftwatch writes to it (the module doctest lists exactly these names).
# Typed as factories of the protocol, so mypy checks each class against it.
DETECTORS: dict[str, DetectorFactory] = {
    "adwin": ADWIN,
    "bocpd": BOCPD,
    "cusum": CUSUM,
    "kswin": KSWIN,
    "page_hinkley": PageHinkley,
}
