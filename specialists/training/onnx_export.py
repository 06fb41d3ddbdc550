"""Exporting a torch sentence encoder to ONNX (fp32) and quantising it to int8 for onnxruntime.

The exported graph has the bundled encoder's interface: inputs ``input_ids`` and
``attention_mask`` (int64, ``[batch, tokens]``, both axes dynamic), output the last hidden
state ``[batch, tokens, dim]``;
:class:`~orchestrator.specialists.backends.encoder.OnnxSentenceEncoder` mean-pools and
normalises it. Needs the ``train`` extra (torch, onnx).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path
from typing import Any

from orchestrator._errors import ConfigurationError

__all__ = ["export_encoder", "quantize_int8"]


def export_encoder(encoder: Any, target: str | Path, *, opset: int = 17) -> Path:
    """Write `encoder` (a torch module: ids, mask -> hidden states) as an fp32 ONNX file."""
    import torch

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    encoder.eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        # The exporter warns about its own deprecations; none concern this fixed-shape graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (ids, mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
            opset_version=opset,
            dynamo=False,
        )
    return target


def quantize_int8(source: str | Path, target: str | Path) -> Path:
    """Dynamic int8 quantisation of the weights (activations stay float): onnxruntime's
    ``quantize_dynamic``, with one scale per output channel. Per-tensor scales cost a
    fine-tuned MiniLM 4.6 points of TweetEval validation macro recall; per channel, 0.3."""
    if importlib.util.find_spec("onnx") is None:
        raise ConfigurationError(
            "int8 quantisation needs the 'onnx' package: "
            "pip install 'specialist-orchestrator[train]'"
        )
    from onnxruntime.quantization import (  # type: ignore[import-untyped,unused-ignore]
        QuantType,
        quantize_dynamic,
    )

    target = Path(target)
    root = logging.getLogger()
    level = root.level
    # quantize_dynamic logs a pre-processing hint on the root logger; it does not apply here.
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(source), str(target), weight_type=QuantType.QInt8, per_channel=True
            )
    finally:
        root.setLevel(level)
    return target
