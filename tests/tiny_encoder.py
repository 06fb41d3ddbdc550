"""A tiny randomly initialised BERT in the checkpoint layout of all-MiniLM-L6-v2, so that
fine-tuning runs in seconds in the tests and needs no pretrained weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from orchestrator.specialists.backends.encoder import _bundled_paths
from orchestrator.specialists.training.finetune import write_safetensors

TINY = {
    "vocab_size": 30522,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "type_vocab_size": 2,
}


def tiny_checkpoint(folder: Path) -> Path:
    """A random 2-layer BERT in the checkpoint layout of all-MiniLM-L6-v2, plus its tokenizer."""
    rng = np.random.default_rng(0)
    h, inner = TINY["hidden_size"], TINY["intermediate_size"]
    tensors = {
        "embeddings.word_embeddings.weight": rng.normal(0, 0.5, (TINY["vocab_size"], h)),
        "embeddings.position_embeddings.weight": rng.normal(0, 0.02, (128, h)),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 0.02, (2, h)),
        "embeddings.LayerNorm.weight": np.ones(h),
        "embeddings.LayerNorm.bias": np.zeros(h),
    }
    shapes = {
        "attention.self.query": (h, h),
        "attention.self.key": (h, h),
        "attention.self.value": (h, h),
        "attention.output.dense": (h, h),
        "intermediate.dense": (inner, h),
        "output.dense": (h, inner),
    }
    for layer in range(TINY["num_hidden_layers"]):
        prefix = f"encoder.layer.{layer}"
        for module, shape in shapes.items():
            tensors[f"{prefix}.{module}.weight"] = rng.normal(0, 0.1, shape)
            tensors[f"{prefix}.{module}.bias"] = np.zeros(shape[0])
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"{prefix}.{norm}.weight"] = np.ones(h)
            tensors[f"{prefix}.{norm}.bias"] = np.zeros(h)
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(
        folder / "model.safetensors", {k: np.asarray(v, np.float32) for k, v in tensors.items()}
    )
    (folder / "config.json").write_text(json.dumps(TINY), encoding="utf-8")
    (folder / "tokenizer.json").write_bytes(_bundled_paths()[1].read_bytes())
    return folder
