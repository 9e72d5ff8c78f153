"""The pipeline stages' sections: each is both a part of the settings and the config its stage takes.

Examples
--------
>>> DriftConfig(window_events=0)
Traceback (most recent call last):
...
monitor.errors.ConfigError: invalid settings: drift_window_events: Input should be greater than or equal to 10; got 0
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from detectors.motifs.miner import MotifConfig
from monitor.errors import ConfigError
from monitor.settings.section import Section, env

__all__ = ["DEFAULT_HIGH_VALUE_TOOLS", "BehaviourSettings", "DriftConfig", "EmbeddingConfig", "MotifStageConfig",
           "ProbeConfig", "SignatureConfig"]

#: Words that make a tool call high-value when they appear in its name (split at _ - . and case).
DEFAULT_HIGH_VALUE_TOOLS = ("credit", "payment", "pay", "refund", "transfer", "wire", "invoice",
                            "permission", "role", "admin", "grant", "privilege", "password", "delete")
# Window and reference are capped at 1,000 events each so one stream's state stays under
# 64 KiB per (model, version, metric).
_MAX_ROWS = 1000


class BehaviourSettings(Section):
    """The behaviour stage's output representation (``DRIFTWATCH_BEHAVIOUR_*``); its sizes are BehaviourConfig's."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_BEHAVIOUR_")
    section = "behaviour"

    representation: Literal["shape", "distilled"] = Field(
        default="shape",
        description="How outputs are represented: shape (hashed n-grams of the answer's shape, a few µs per "
        "event; detects 13 of 15 swaps in docs/swaps.md) or distilled (a 256-dimension model2vec static "
        "embedding distilled offline from the bundled MiniLM, with the same format cues; topic rather than "
        "style, ~0.5 ms per answer; needs driftwatch[distill] the first time, see monitor/static_model.py).")
    distilled_model: Path | None = Field(
        default=None,
        description="A static model folder (model2vec save_pretrained) for the distilled representation; when "
        "unset it is distilled on first use and cached under models/ in the data folder.")


class DriftConfig(Section):
    """How the drift stage watches each stream (``DRIFTWATCH_DRIFT_*``)."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_DRIFT_")
    section = "drift"

    window_events: int = Field(default=500, ge=10, le=_MAX_ROWS,
                               description="Events in the rolling window compared with the reference.")
    window_ms: int = Field(default=0, ge=0,
                           description="Also drop window events older than this (ms; 0: no age limit).")
    evaluate_every: int = Field(default=250, ge=10,
                                description="Events between two divergence evaluations of a stream.")
    reference_events: int = Field(default=500, ge=10, le=_MAX_ROWS,
                                  description="Reference size, and the change-point detectors' warm-up.")
    reference_policy: Literal["first", "pinned", "previous"] = Field(
        default="first",
        description="A version's first N events, a pinned set (drift_pinned_reference) "
        "or the previous version's recent events.")
    pinned_reference: Path | None = Field(
        default=None, description="JSONL file of reference events, per model_id, for the 'pinned' policy.")
    arl0: float = Field(default=10_000.0, gt=1,
                        description="Target mean events between false change-point alarms, fleet-wide.")
    fleet_streams: int = Field(
        default=1, ge=1,
        description="Streams (model, version[, tenant]) expected; each detector's ARL0 is scaled by it "
        "and by metrics x detectors per stream, so the fleet stays at drift_arl0.")
    detectors: tuple[str, ...] = Field(
        default=("cusum",), description="Change-point detectors per metric (adwin, bocpd, cusum, kswin, "
        "page_hinkley).")
    divergence_q: float = Field(default=1e-3, gt=0, lt=1,
                                description="Benjamini-Hochberg level across metrics per evaluation.")
    per_tenant: bool = Field(default=False, description="Keep streams per tenant_id too.")
    refusal_flag_rate: float = Field(
        default=0.05, ge=0, le=1,
        description="Flag refusals for motif mining while the reference refusal rate is below this.")
    lock_flag_rate: float = Field(
        default=0.05, ge=0, le=1,
        description="Flag confidence locks (10 tokens in a row at p > 0.99, from output_logprobs) for motif "
        "mining while the reference's share of locked answers is below this.")
    entropy_flag_sigmas: float = Field(
        default=3.0, gt=0, description="Flag answers whose entropy is this many SDs below the reference.")
    high_value_tools: tuple[str, ...] = Field(
        default=DEFAULT_HIGH_VALUE_TOOLS, description="Words that make a tool call high-value.")
    refusal_phrases: tuple[str, ...] | None = Field(
        default=None, description="Refusal phrases (default: a multilingual set).")
    acknowledgements: bool = Field(
        default=True, description="Read analysts' acknowledgements from the store's `acknowledgements` table: "
        "an acknowledged (or resolved) change-point alert, or its incident, ends the episode and its level "
        "becomes the stream's reference. The stage's only store access; an unreadable store keeps the last "
        "set. Evaluations, the bench and the gate turn it off.")
    acknowledgement_reload_s: float = Field(
        default=30.0, ge=0.0, description="Check the acknowledgements at most this often (seconds); 0 checks "
        "before every batch.")

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from detectors.changepoint import DETECTORS  # numpy and scipy: only when a config is made

        if not value or any(name not in DETECTORS for name in value):
            raise ConfigError(f"drift detectors must be among {', '.join(sorted(DETECTORS))}; got {list(value)!r}")
        return value


# Embedding drift (monitor/stages/embedding.py). Default "precomputed": only
# producer-supplied embeddings are scored, so no model runs and the 10,000
# events/s CPU worker target holds; MiniLM on 2 CPU cores embeds ~30 outputs/s.
class EmbeddingConfig(Section):
    """Embedding drift: mode, model, sizes and rates (``DRIFTWATCH_EMBEDDING``, ``DRIFTWATCH_EMBEDDING_*``)."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_EMBEDDING_")
    section = "embedding"

    mode: Literal["off", "precomputed", "model"] = Field(
        default="precomputed", validation_alias=env("embedding"),
        description="Off; precomputed (score events' own `embedding` vectors, never load a model); "
        "model (also embed outputs that carry none, see embedding_sample_rate).",
    )
    model: Path | None = Field(
        default=None,
        description="A local sentence-transformers folder (SentenceTransformer.save); the bundled "
        "all-MiniLM-L6-v2 when unset. Read offline: nothing is downloaded.",
    )
    device: str = Field(
        default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Torch device for embedding and scoring: auto (CUDA when present), cpu, cuda, cuda:N.",
    )
    batch_size: int = Field(default=64, gt=0, le=4096, description="Texts per forward pass of the embedding model.")
    quantize: bool = Field(
        default=False,
        description="On CPU, int8 dynamic quantisation of the model's Linear layers (faster, less exact).",
    )
    max_tokens: int | None = Field(
        default=None, ge=8, le=8192,
        description="Truncate outputs to this many word pieces before embedding (cost is about linear in "
        "it); the model's own limit (256 for MiniLM) when unset.",
    )
    sample_rate: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="In model mode, the fraction of outputs without an embedding that get embedded, "
        "chosen by a hash of the event id (deterministic). On CPU at 10,000 events/s use <= 0.002.",
    )
    reference_size: int = Field(
        default=2000, ge=16, le=10_000,
        description="Reference vectors kept per (model, version): a seeded reservoir sample of the warm-up.",
    )
    warmup: int = Field(
        default=2000, ge=16,
        description="Vectors per (model, version) seen before the reference freezes and scoring starts.")
    window: int = Field(default=256, ge=8, le=10_000, description="Vectors per scored window (the MMD batch size).")
    alpha: float = Field(default=0.01, gt=0.0, lt=0.5, description="False-alarm rate per scored window.")
    null_draws: int = Field(default=500, ge=50, le=100_000,
                            description="Null draws per reference for the window thresholds.")
    novelty_k: int = Field(default=10, ge=1, le=1000, description="Nearest reference neighbours in the novelty score.")
    novelty_quantile: float = Field(
        default=0.99, gt=0.5, lt=1.0,
        description="Reference quantile of novelty above which an output is flagged embedding_novelty.",
    )

    @model_validator(mode="after")
    def _consistent_sizes(self) -> EmbeddingConfig:
        if self.mode == "off":  # no stage is built: nothing to check
            return self
        if self.warmup < self.reference_size:
            raise ConfigError(f"embedding_warmup must be >= embedding_reference_size ({self.reference_size}); "
                              f"got {self.warmup}")
        if self.reference_size < self.window + 2:
            raise ConfigError(f"embedding_reference_size must exceed embedding_window + 1 ({self.window + 1}); "
                              f"got {self.reference_size}")
        return self

    def torch_device(self) -> str:
        """The device to use; ``auto`` resolves only in model mode (elsewhere torch is not imported)."""
        if self.device != "auto":
            return self.device
        if self.mode != "model":
            return "cpu"
        from detectors.embedding.encoder import resolve_device

        return resolve_device("auto")


class ProbeConfig(Section):
    """Probe scoring (monitor/stages/probe.py): runs only when ``weights`` is set (``DRIFTWATCH_PROBE_*``)."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_PROBE_")
    section = "probe"

    weights: Path | None = Field(
        default=None,
        description="Linear probe on `activations`: a .npz file with w (d,) and b (scalar); off when unset.",
    )
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0,
                             description="Probe probability above which an event is flagged and a "
                             "window whose mean crosses it alerts.")
    window: int = Field(default=256, ge=8, le=100_000, description="Probe scores per window.")
    reference_size: int = Field(default=1000, ge=8, le=100_000,
                                description="First probe scores per (model, version) kept as reference.")
    alpha: float = Field(default=0.001, gt=0.0, lt=0.5,
                         description="KS-test p-value below which a window's score distribution counts as shifted.")


class MotifStageConfig(Section):
    """Trigger-motif mining (``DRIFTWATCH_MOTIF_*``); the miner's defaults are :class:`MotifConfig`'s."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_MOTIF_")
    section = "motif"

    # The window: its length and its steps.
    window_events: int = Field(
        default=MotifConfig.window_events, gt=0,
        description="Events per (model_id, model_version) in the rolling window mined for trigger motifs.")
    buckets: int = Field(default=MotifConfig.buckets, ge=1, le=50, description="The window slides in this "
                         "many steps; motifs are scored at the end of each step.")
    # What makes an n-gram a candidate.
    min_support: int = Field(default=MotifConfig.min_support, ge=2,
                             description="Fewest anomalous events in the window whose input holds a candidate n-gram.")
    burst_min_support: int = Field(
        default=MotifConfig.burst_min_support, ge=2,
        description="Fewest anomalous events whose answer was a payload burst (one new answer given to unrelated "
        "inputs) that make a candidate on the payload-burst test.")
    min_entities: int = Field(default=MotifConfig.min_entities, ge=1, description="Fewest distinct users, or "
                              "distinct tenants, among those anomalous events (k).")
    min_lift: float = Field(default=MotifConfig.min_lift, ge=1.0,
                            description="Least lift: P(anomalous | n-gram) / P(anomalous) in the window.")
    fdr: float = Field(default=MotifConfig.fdr, gt=0.0, lt=1.0, description="False discovery rate of the "
                       "Benjamini-Hochberg step over all n-grams tested.")
    # The bounds of each step's state.
    max_ngrams: int = Field(
        default=MotifConfig.max_ngrams, ge=100,
        description="Most n-grams of anomalous events tracked per window step (bounded state).")
    sketch_width: int = Field(default=MotifConfig.sketch_width, ge=1024, description="Columns of the count-min "
                              "sketch counting every n-gram's support (4 rows, per step).")
    reference_events: int = Field(
        default=MotifConfig.reference_events, ge=0, le=1_000_000,
        description="The version's first events, the reference that a trigger's novelty is judged against; "
        "nothing is named before it is complete (0: every n-gram is new).")
    ignore_flags: tuple[str, ...] = Field(
        default=("trigger", "input_shift"),
        description="Flags that do not make an event anomalous for motif mining: flags on the input, not on "
        "what the model did (a known input trigger; the behaviour stage's input_shift, raised on every event "
        "while what users ask has moved, so a new prompt template's own words would explain it).",
    )

    def miner(self) -> MotifConfig:
        """The miner's config: these fields, the miner's defaults for the rest."""
        return MotifConfig(window_events=self.window_events, buckets=self.buckets, min_support=self.min_support,
                           burst_min_support=self.burst_min_support,
                           min_entities=self.min_entities, min_lift=self.min_lift, fdr=self.fdr,
                           max_ngrams=self.max_ngrams, sketch_width=self.sketch_width,
                           reference_events=self.reference_events)


class SignatureConfig(Section):
    """Signature matching and canaries: the files, the store's table, the canary key."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_SIGNATURE_")
    section = "signatures"

    file: Path | None = Field(
        default=None, validation_alias=env("signatures"),
        description="YAML/JSON signature file; the shipped starter pack when unset.",
    )
    table: bool = Field(
        default=True,
        description="Also match the signatures kept in the store's `signatures` table (minted canaries).",
    )
    reload_s: float = Field(
        default=30.0, ge=0.0,
        description="Check the signature file and table for changes at most this often (seconds); "
        "0 checks before every batch.",
    )
    canary_key: SecretStr | None = Field(
        default=None, validation_alias=env("canary_key"),
        description="Secret (>= 16 bytes) keying canaries' HMAC hashes; when unset, the key file is used.",
    )
    canary_key_file: Path | None = Field(
        default=None, validation_alias=env("canary_key_file"),
        description="File holding the canary key; default canary.key in the data folder, "
        "created with mode 0600 by `driftwatch canary new`.",
    )
