"""Static embeddings: each text is the mean of its tokens' rows in a fixed table, scaled to unit length.

A static model (model2vec, Tulkens & van Dongen 2024, distilled from a
sentence transformer: each vocabulary token embedded once, PCA, SIF weights)
is a tokenizer plus a ``(vocabulary, dimension)`` table. A text's vector is
the mean of its tokens' rows, normalised: no network and no transformer;
tokenizing costs most of it (about 0.5 ms for a 1,900-character answer on
the shared 2-core machine, against 30-60 µs for the sums).

:func:`static_vectors` is the pure part: token ids and the table in, float32
vectors out. Each text's row is summed on its own (its token counts times the
table, a sparse product row by row), so a vector is bit-identical whatever
the batch it is encoded in, which the behaviour stage's exact windows need.
:class:`StaticEncoder` adds the tokenizer the way model2vec's
``StaticModel.encode`` does (the text cut to ``max_length`` times the
vocabulary's median token length in characters, then to ``max_length``
tokens, no special tokens, the unknown token dropped).

Examples
--------
>>> table = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=np.float32)
>>> static_vectors([[0, 1], [2], []], table).astype(float).round(4).tolist()
[[0.7071, 0.7071], [0.6, 0.8], [0.0, 0.0]]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["StaticEncoder", "static_vectors"]


def static_vectors(ids: Sequence[Sequence[int]], table: np.ndarray) -> np.ndarray:
    """(len(ids), table.shape[1]) float32: each id list's mean row of ``table``, unit length (zeros if empty)."""
    from scipy.sparse import csr_matrix

    lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
    indptr = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    flat = np.fromiter((t for i in ids for t in i), dtype=np.int64, count=int(indptr[-1]))
    # One sparse row of token counts per text times the table: each row is summed on its own, in token
    # order, so a vector does not depend on its batch; and no (tokens, dimension) copy of the rows is made.
    counts = csr_matrix((np.ones(len(flat), dtype=np.float32), flat, indptr), shape=(len(ids), table.shape[0]))
    sums = np.asarray(counts @ table.astype(np.float32, copy=False), dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return sums / np.maximum(norms, np.float32(1e-12))


@dataclass(frozen=True)
class StaticEncoder:
    """A static model folder (``StaticModel.save_pretrained``) loaded for :meth:`encode`.

    Parameters
    ----------
    tokenizer
        A ``tokenizers.Tokenizer``.
    table
        ``(vocabulary, dimension)`` float32 token vectors.
    max_length
        Tokens kept per text (model2vec's default, 512); ``None`` keeps all.
    unknown_id
        Id of the unknown token, dropped like model2vec does; ``None`` when there is none.
    max_chars
        Characters of a text tokenized (model2vec's ``max_length * median_token_length``): a
        pathological answer costs no more than a long one.
    path
        The folder it was read from.

    Examples
    --------
    >>> from tokenizers import Tokenizer
    >>> from tokenizers.models import WordLevel
    >>> from tokenizers.pre_tokenizers import Whitespace
    >>> tokenizer = Tokenizer(WordLevel({"[UNK]": 0, "good": 1, "bad": 2}, unk_token="[UNK]"))
    >>> tokenizer.pre_tokenizer = Whitespace()
    >>> table = np.array([[9.0, 9.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    >>> StaticEncoder(tokenizer, table, 512, 0, 10_000, "").encode(["good bad what"]).astype(float).round(4).tolist()
    [[0.7071, 0.7071]]
    """

    tokenizer: Any
    table: np.ndarray
    max_length: int | None
    unknown_id: int | None
    max_chars: int | None
    path: str

    @property
    def dimension(self) -> int:
        return int(self.table.shape[1])

    @classmethod
    def load(cls, folder: str | Path) -> StaticEncoder:
        """Read ``folder`` (``tokenizer.json``, ``model.safetensors``, ``config.json``); nothing is fetched."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        missing = [name for name in ("tokenizer.json", "model.safetensors", "config.json")
                   if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"static model folder {folder} lacks {', '.join(missing)}; expected a folder "
                                    "written by model2vec's StaticModel.save_pretrained")
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        tensors = load_file(str(folder / "model.safetensors"))
        if set(tensors) != {"embeddings"}:
            # Vocabulary quantisation or SIF weights kept apart (token_mapping, weights) are not read here.
            raise ValueError(f"static model {folder} must hold only an 'embeddings' table; got {sorted(tensors)}")
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        model = tokenizer.model
        if hasattr(model, "unk_token"):  # WordPiece, BPE, word level
            unknown_id = tokenizer.token_to_id(model.unk_token) if model.unk_token is not None else None
        else:  # Unigram
            unknown_id = json.loads(tokenizer.to_str())["model"].get("unk_id")
        max_length = config.get("max_length", 512)
        median = int(np.median([len(token) for token in tokenizer.get_vocab()]))
        return cls(tokenizer=tokenizer, table=np.ascontiguousarray(tensors["embeddings"], dtype=np.float32),
                   max_length=None if max_length is None else int(max_length), unknown_id=unknown_id,
                   max_chars=None if max_length is None else int(max_length) * median, path=str(folder))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimension) float32 unit vectors; a row depends on its own text only."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.max_chars is not None:
            texts = [t[: self.max_chars] for t in texts]
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        ids = [e.ids[: self.max_length] if self.max_length is not None else e.ids for e in encodings]
        if self.unknown_id is not None:
            ids = [[t for t in row if t != self.unknown_id] for row in ids]
        return static_vectors(ids, self.table)
