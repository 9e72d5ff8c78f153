"""Embedding drift: text to vectors (:mod:`.encoder`), vectors scored against a reference.

- :mod:`.encoder`: ``embed(texts, *, device, batch_size)``, the one place torch runs a model;
- :mod:`.reference`: a reference sample kept on the torch device, with the sums the tests reuse;
- :mod:`.mmd`: unbiased MMD² with an RBF kernel and its subsampling null;
- :mod:`.energy`: energy distance;
- :mod:`.null`: the null draws behind the thresholds, by subsampling the reference;
- :mod:`.novelty`: per-output mean cosine distance to the k nearest reference embeddings;
- :mod:`.scorer`: all of them, plus centroid shift, on one batch at once.
"""
