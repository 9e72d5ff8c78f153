"""How many threads the numeric libraries use in this process.

The pipeline multiplies small matrices (a batch of a few thousand events
against a few hundred random features). A multi-threaded BLAS spends more on
waking and spinning its threads there than it saves, and on a busy machine
the spinning takes the cores the other workers need: measured with
``driftwatch bench pipeline``, the behaviour stage cost four times the CPU
with OpenBLAS's default threads than with one. Scale-out is Kafka partitions
and workers, so the default is one thread (``DRIFTWATCH_MATH_THREADS``).

Examples
--------
>>> limit_math_threads(1) >= 0
True
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

__all__ = ["limit_math_threads"]

_applied: list[threadpool_limits] = []


def limit_math_threads(threads: int) -> int:
    """Cap the BLAS thread pools loaded so far at ``threads``; return how many pools were capped."""
    import numpy  # noqa: F401  (load the BLAS numpy uses, so that its pool is there to cap)

    limits = threadpool_limits(limits=threads, user_api="blas")
    _applied.append(limits)  # keep the limit for the life of the process
    return len(limits.get_original_num_threads())
