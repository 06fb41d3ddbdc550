"""Embedding whole datasets once: batched, length-sorted, cached on disk by content hash.

Training and evaluation encode tens of thousands of texts; re-encoding the same split for
each head or each evaluation would dominate the run time. The cache lives under a directory
the caller chooses (default ``.orchestrator/cache``), never inside the package.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from orchestrator.specialists.backends.encoder import TextEncoder, Vectors

__all__ = ["DEFAULT_CACHE_DIR", "embed_texts", "split_embedder"]

DEFAULT_CACHE_DIR = Path(".orchestrator") / "cache"
Progress = Callable[[int], None]


def _key(model_id: str, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(model_id.encode())
    for text in texts:
        digest.update(b"\x00")
        digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:32]


def embed_texts(
    encoder: TextEncoder,
    texts: Sequence[str],
    *,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> Vectors:
    """Encode `texts` (one row each); reads and writes ``cache_dir`` unless it is ``None``."""
    file: Path | None = None
    if cache_dir is not None:
        file = Path(cache_dir) / "embeddings" / f"{_key(encoder.model_id, texts)}.npy"
        if file.is_file():
            cached: Vectors = np.load(file)
            if cached.shape == (len(texts), encoder.dim):
                if progress:
                    progress(len(texts))
                return cached
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    # Sorting by length keeps padding (wasted compute) small inside each batch.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out[idx] = encoder.encode([texts[i] for i in idx])
        if progress:
            progress(len(idx))
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename so that an interrupted run never leaves a truncated cache entry.
        fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, out)
        os.replace(tmp, file)
    return out


def split_embedder(
    encoder: TextEncoder,
    *,
    cache_dir: str | Path | None,
    progress: Callable[[str, int], Progress],
) -> Callable[[Sequence[str], str], Vectors]:
    """``embed(texts, what)``: :func:`embed_texts` with a progress task named "embed WHAT"."""

    def embed(texts: Sequence[str], what: str) -> Vectors:
        return embed_texts(
            encoder, texts, cache_dir=cache_dir, progress=progress(f"embed {what}", len(texts))
        )

    return embed
