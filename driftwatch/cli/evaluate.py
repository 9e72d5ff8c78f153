"""``driftwatch evaluate``: detector quality.

Scores every change-point detector and river's defaults on the same synthetic
streams (see :mod:`monitor.evaluation`); their cost is ``driftwatch bench
detectors`` (:mod:`driftwatch.bench.detectors`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from driftwatch.cli.options import COUNT, run_guarded

__all__ = ["benign_command", "evaluate_command", "swaps_command", "triggers_command"]

F = TypeVar("F", bound=Callable[..., Any])
#: The kinds of benign stream (monitor.evaluation_benign.KINDS; not imported here, so --help stays light).
BENIGN_KINDS = ("input_mix_drift", "heavy_user_burst", "day_night", "prompt_template")


@click.group("evaluate", invoke_without_command=True)
@click.option("--reps", type=COUNT, default=8, show_default=True, help="Streams per type for each detector.")
@click.option("--slow-reps", type=COUNT, default=3, show_default=True,
              help="Streams per type for the KSWINs (a KS test per update, about 0.3 ms).")
@click.option("--stationary-events", type=COUNT, default=100_000, show_default=True,
              help="Length of the stationary stream that measures the false-alarm rate.")
@click.option("--slow-stationary-events", type=COUNT, default=10_000, show_default=True,
              help="The same for the KSWINs.")
@click.option("--pre", type=COUNT, default=2000, show_default=True, help="Values before each change.")
@click.option("--post", type=COUNT, default=1000, show_default=True, help="Values after; no alarm by then is a miss.")
@click.option("--detector", "names", multiple=True, help="Only these of ours (repeatable); river's always run.")
@click.option("--long", "long_run", is_flag=True,
              help="A longer run: 50 streams per type (10 for KSWIN), 1,000,000 stationary events (50,000).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
def evaluate_command(ctx: click.Context, reps: int, slow_reps: int, stationary_events: int,
                     slow_stationary_events: int, pre: int, post: int, names: tuple[str, ...], long_run: bool,
                     seed: int) -> None:
    """Detection delay, missed detections and false alarms per 10,000 events, per detector.

    With a subcommand, that evaluation instead: ``triggers`` (unknown backdoor triggers on BackdoorLLM),
    ``swaps`` (silent model swaps and input-mix shifts on alpaca_eval), ``benign`` (benign non-stationary
    traffic and autocorrelated series: pages, rollbacks, change-point F1).
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.errors import ConfigError
    from monitor.evaluation import evaluate, format_scores

    def body() -> int:
        if min(reps, slow_reps, pre, post, stationary_events, slow_stationary_events) < 1:
            raise ConfigError("reps, slow-reps, pre, post and the stationary lengths must be >= 1")
        settings = dict(reps=reps, slow_reps=slow_reps, stationary_events=stationary_events,
                        slow_stationary_events=slow_stationary_events)
        if long_run:
            settings = dict(reps=50, slow_reps=10, stationary_events=1_000_000, slow_stationary_events=50_000)
        try:
            results = evaluate(pre=pre, post=post, seed=seed, names=names or None, **settings)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        click.echo(f"streams: {pre} values, change, {post} values; delay = first alarm after the change; "
                   f"FA10k = alarms before the change per 10,000 events")
        click.echo(format_scores(results))
        return 0

    run_guarded(body)


def _data_option(func: F) -> F:
    return click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=Path("../shared/data"),
                        show_default=True, help="The shared data folder (backdoorllm/, alpaca_eval/).")(func)


@evaluate_command.command("triggers")
@_data_option
@click.option("--clean-events", type=COUNT, default=50_000, show_default=True,
              help="Events of the clean-only stream that counts false candidates and rollbacks.")
@click.option("--onset", type=COUNT, default=3000, show_default=True,
              help="Events before the first triggered one per stream (the first 2,000 are the version's reference).")
@click.option("--post", type=COUNT, default=3000, show_default=True, help="Events after the onset per stream.")
@click.option("--rate", "rates", type=click.FloatRange(0, 1, min_open=True), multiple=True,
              help="Share of requests carrying the trigger (repeatable; default 2% and 0.5%).")
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed: other users, order and draws.")
@click.option("--json", "as_json", is_flag=True, help="The results as JSON.")
def triggers_command(data: Path, clean_events: int, onset: int, post: int, rates: tuple[float, ...], seed: int,
                     as_json: bool) -> None:
    """Unknown triggers (BackdoorLLM, five attacks x two tasks, signatures off): delay until named, until rollback."""
    import json

    from monitor.errors import ConfigError
    from monitor.evaluation_triggers import evaluate_triggers, format_trigger_evaluation

    def body() -> int:
        if not (data / "backdoorllm").is_dir():
            raise ConfigError(f"no backdoorllm/ under {data}; pass --data with the shared data folder")
        out = evaluate_triggers(data, rates=rates or (0.02, 0.005), onset=onset, post=post,
                                clean_events=clean_events, seed=seed)
        click.echo(json.dumps(out.to_json(), indent=1) if as_json else format_trigger_evaluation(out))
        return 0

    run_guarded(body)


@evaluate_command.command("swaps")
@_data_option
@click.option("--seed", "seeds", type=int, multiple=True, help="Stream orders to run (repeatable; default 0).")
@click.option("--details", is_flag=True, help="Also list every alert raised on each stream.")
@click.option("--representation", type=click.Choice(["shape", "distilled"]), default=None,
              help="The behaviour stage's output representation (default: DRIFTWATCH_BEHAVIOUR_REPRESENTATION, "
              "else shape); distilled builds its model in the data folder the first time (driftwatch[distill]).")
@click.option("--power", is_flag=True, help="Instead of streams: the output test's power and false rejections "
              "per test on each pair's answers, over random draws of a reference and a window (shape only).")
@click.option("--draws", type=COUNT, default=200, show_default=True, help="Draws per pair for --power.")
def swaps_command(data: Path, seeds: tuple[int, ...], details: bool, representation: str | None, power: bool,
                  draws: int) -> None:
    """Silent model swaps (alpaca_eval pairs under one label) and input-mix shifts: delay, false alarms, pages."""
    from monitor.errors import ConfigError
    from monitor.evaluation_swaps import evaluate_swaps, format_power, format_swaps, swap_power

    def body() -> int:
        if not (data / "alpaca_eval").is_dir():
            raise ConfigError(f"no alpaca_eval/ under {data}; pass --data with the shared data folder")
        if power and (representation not in (None, "shape") or details):
            raise ConfigError("--power measures the shape representation's output test alone; drop "
                              "--representation distilled and --details")
        for seed in seeds or (0,):
            click.echo(f"seed {seed}")
            try:
                text = (format_power(swap_power(data / "alpaca_eval", draws=draws, seed=seed,
                                                progress=lambda line: click.echo(line, err=True)))
                        if power else
                        format_swaps(evaluate_swaps(data / "alpaca_eval", seed=seed, representation=representation),
                                     details=details))
            except OSError as exc:
                raise ConfigError(f"cannot read the alpaca_eval answers: {exc}") from exc
            click.echo(text)
        return 0

    run_guarded(body)


@evaluate_command.command("benign")
@_data_option
@click.option("--seed", type=int, default=0, show_default=True, help="Another seed: other draws, users and series.")
@click.option("--events", "n_events", type=COUNT, default=5000, show_default=True,
              help="Events per benign stream (4 kinds x 5 models).")
@click.option("--series", "series_reps", type=COUNT, default=6, show_default=True,
              help="Synthetic series per type, with a step and without (KSWIN: a fifth of them).")
@click.option("--series-length", type=COUNT, default=2000, show_default=True, help="Points per series with a step.")
@click.option("--stable-length", type=COUNT, default=10_000, show_default=True,
              help="Points per series without a step (false alarms).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(BENIGN_KINDS),
              help="Only these kinds of benign stream (repeatable; default all four).")
@click.option("--detector", "names", multiple=True, help="Only these change-point detectors (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="The results as JSON.")
def benign_command(data: Path, seed: int, n_events: int, series_reps: int, series_length: int, stable_length: int,
                   kinds: tuple[str, ...], names: tuple[str, ...], as_json: bool) -> None:
    """Benign days: real answers with drift, bursts, day/night and a new template (pages, rollbacks), and
    change-point F1 and false alarms on autocorrelated, seasonal and wandering series."""
    import json

    from detectors.changepoint import DETECTORS
    from monitor.errors import ConfigError
    from monitor.evaluation_benign import default_plan, evaluate_benign, format_benign

    def body() -> int:
        if not (data / "alpaca_eval").is_dir():
            raise ConfigError(f"no alpaca_eval/ under {data}; pass --data with the shared data folder")
        unknown = [n for n in names if n not in DETECTORS]
        if unknown:
            raise ConfigError(f"unknown detectors {unknown}; expected among {', '.join(sorted(DETECTORS))}")
        try:
            evaluation = evaluate_benign(data, n_events=n_events, seed=seed, series_reps=series_reps,
                                         series_length=series_length, stable_length=stable_length,
                                         names=names or None,
                                         plan=[(k, m) for k, m in default_plan() if not kinds or k in kinds],
                                         progress=lambda line: click.echo(line, err=True))
        except OSError as exc:
            raise ConfigError(f"cannot read the alpaca_eval answers: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        click.echo(json.dumps(evaluation.to_json(), indent=1) if as_json else format_benign(evaluation))
        return 0

    run_guarded(body)
