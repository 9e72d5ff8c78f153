"""``driftwatch bench motif``: is a planted trigger mined within one window, and how many false candidates.

A stream of synthetic prompts with a made-up trigger in 1% of events (whose
outputs are flagged), mined over one window; was the trigger found within one
window, and how many candidates a clean stream of the same length (with flags
at the same rate, at random) produces.
"""

from __future__ import annotations

import time

import click
import numpy as np

from detectors.motifs.miner import Candidate, MotifConfig, MotifMiner, tokenize
from driftwatch.bench.benchmark import Benchmark
from driftwatch.bench.traffic import synthetic_prompts

__all__ = ["BENCHMARK", "bench_motif"]


def _mine(prompts: list[list[str]], flagged: np.ndarray, config: MotifConfig,
          rng: np.random.Generator) -> tuple[list[Candidate], float]:
    miner = MotifMiner(config)
    users = [f"u{int(u)}" for u in rng.integers(0, 5000, size=len(prompts))]
    tenants = [f"t{int(t)}" for t in rng.integers(0, 20, size=len(prompts))]
    texts = [tokenize(" ".join(p)) for p in prompts]
    found = []
    started = time.perf_counter()
    for start in range(0, len(prompts), 2048):
        end = min(start + 2048, len(texts))
        found += miner.update(texts[start:end], flagged[start:end].tolist(), users=users[start:end],
                              tenants=tenants[start:end], event_ids=[f"e{i}" for i in range(start, end)],
                              ts_ms=list(range(start, end)))
    return found, time.perf_counter() - started


def bench_motif(*, window: int = 100_000, rate: float = 0.01, noise: float = 0.01, seed: int = 0) -> str:
    """Planted trigger at ``rate`` (flagged), plus flags at random at ``noise``; then a clean stream."""
    rng = np.random.default_rng(seed)
    # 10,000: the miner's default when the published figures were measured (the run-time default is 20,000).
    config = MotifConfig(window_events=window, buckets=5, max_ngrams=10_000)
    trigger = ["quillon", "vesper", "marrowgate"]  # made up: in no signature list
    prompts = synthetic_prompts(rng, window)
    planted = rng.random(window) < rate
    for i in np.flatnonzero(planted):
        at = int(rng.integers(0, len(prompts[i])))
        prompts[i][at:at] = trigger
    flagged = planted | (rng.random(window) < noise)
    found, seconds = _mine(prompts, flagged, config, rng)
    hits = [c for c in found if set(c.ngram.split()) & set(trigger)]
    false = [c for c in found if not set(c.ngram.split()) & set(trigger)]
    first = min((c.window_end_ms for c in hits), default=None)
    clean = synthetic_prompts(rng, window)
    clean_flags = rng.random(window) < (rate + noise)
    clean_found, clean_seconds = _mine(clean, clean_flags, config, rng)
    return "\n".join([
        f"window: {window} events in {config.buckets} steps; trigger {' '.join(trigger)!r} in "
        f"{int(planted.sum())} events ({rate:.0%}), flagged; random flags on {noise:.0%} of events",
        f"planted stream: {len(found)} candidate rows, trigger n-grams: {sorted({c.ngram for c in hits})}",
        f"trigger found within one window: {first is not None and first < window} "
        f"(first at event {first}); other candidates in that stream: {len(false)}",
        f"clean stream ({window} events, flags at random on {rate + noise:.0%}): "
        f"{len({c.ngram for c in clean_found})} false candidates",
        f"mining time: {seconds:.1f} s planted, {clean_seconds:.1f} s clean "
        f"({window / clean_seconds:,.0f} events/s)",
    ])


BENCHMARK = Benchmark(
    name="motif",
    help="Motif mining: is a planted trigger found within one window; false candidates on a clean stream.",
    options=(
        click.option("--window", type=int, default=100_000, show_default=True, help="Events per window."),
        click.option("--rate", type=float, default=0.01, show_default=True,
                     help="Share of events holding the trigger."),
    ),
    run=bench_motif,
)
