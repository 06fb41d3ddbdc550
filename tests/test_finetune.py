"""Fine-tuning the encoder, ONNX export and int8 quantisation, on a tiny randomly initialised
BERT that the test writes itself (so it runs in seconds and needs no pretrained weights).

Needs the ``train`` extra (torch, onnx); skipped without it, except the error message test.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from orchestrator._errors import ConfigurationError
from orchestrator.cli.main import main
from orchestrator.specialists import TextInput
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.backends.encoder import OnnxSentenceEncoder
from orchestrator.specialists.evaluation.datasets import Split, TextDataset
from orchestrator.specialists.intent import IntentSpecialist
from orchestrator.specialists.training.finetune import read_safetensors, resolve_init
from tests.tiny_encoder import tiny_checkpoint

TOPICS = {
    "weather": ["the weather in {c}", "will it rain in {c}", "how hot is it in {c} today"],
    "flights": ["book a flight to {c}", "flights from here to {c}", "cheap plane ticket to {c}"],
}
CITIES = ["paris", "tokyo", "lima", "oslo", "cairo", "rome", "delhi", "quito", "accra", "seoul"]


def _dataset() -> TextDataset:
    texts = [p.format(c=c) for patterns in TOPICS.values() for p in patterns for c in CITIES]
    labels = [label for label, patterns in TOPICS.items() for _ in patterns for _ in CITIES]
    return TextDataset("tiny", "jsonl", "tiny.jsonl", {"train": Split(texts, labels)})


def test_finetune_without_torch_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hi", "label": "a"}\n', encoding="utf-8")
    args = ["train", "x", "--data", str(data), "--format", "jsonl", "--specialist", "intent"]
    code = main(["specialists", *args, "--finetune", "--store", str(tmp_path / "store")])
    assert code != 0
    assert "pip install 'specialist-orchestrator[train]'" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_export_matches_torch_and_int8_stays_close(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from orchestrator.specialists.training.finetune import load_pretrained
    from orchestrator.specialists.training.onnx_export import export_encoder, quantize_int8

    folder = tiny_checkpoint(tmp_path / "tiny")
    model = load_pretrained(folder, dropout=0.0).eval()
    fp32 = export_encoder(model, tmp_path / "fp32.onnx")
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx")
    texts = ["book a flight to lima", "is it going to rain in oslo tomorrow morning", "hi"]
    onnx_fp32 = OnnxSentenceEncoder(fp32, folder / "tokenizer.json", model_id="a").encode(texts)
    onnx_int8 = OnnxSentenceEncoder(int8, folder / "tokenizer.json", model_id="b").encode(texts)
    # The same mean pooling in torch, on the same tokens, one text at a time (no padding).
    encoder = OnnxSentenceEncoder(fp32, folder / "tokenizer.json", model_id="c")
    rows = []
    for encoding in encoder._tokenizer.encode_batch(texts):
        ids = torch.tensor([encoding.ids])
        mask = torch.tensor([encoding.attention_mask])
        with torch.no_grad():
            hidden = model(ids, mask)
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy()[0])
    expected = np.stack(rows)
    np.testing.assert_allclose(onnx_fp32, expected, atol=1e-4)
    assert (onnx_int8 * onnx_fp32).sum(axis=1).min() > 0.9
    assert int8.stat().st_size < fp32.stat().st_size


def test_tiny_finetune_exports_loads_and_predicts(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from orchestrator.specialists.training.finetune import FinetuneConfig, finetune_artifact

    folder = tiny_checkpoint(tmp_path / "tiny")
    config = FinetuneConfig(
        epochs=3, learning_rate=1e-3, head_learning_rate=1e-2, batch_size=8, max_length=16
    )
    result = finetune_artifact(
        _dataset(),
        "tiny-ft",
        tmp_path / "store" / "tiny-ft",
        specialist="intent",
        config=config,
        pretrained=folder,
        cache_dir=None,
        command="orchestrator specialists train tiny-ft --finetune",
    )
    files = {p.name for p in result.path.iterdir()}
    assert {"encoder.onnx", "tokenizer.json", "artifact.json", "head.npz"} <= files
    tuned = result.card["finetune"]
    assert tuned["epochs"] == 3 and len(tuned["history"]) == 3 and tuned["steps"] > 0
    assert tuned["onnx"] in ("int8", "fp32")
    assert {"val_score_onnx_fp32", "val_score_onnx_int8"} <= set(tuned)
    assert "fine-tuned" in (result.path / "model_card.md").read_text()
    artifact = load_artifact(result.path)
    assert artifact.encoder_file == "encoder.onnx"
    assert artifact.encoder_id.startswith("finetuned:tiny-ft@")
    spec = IntentSpecialist({"artifact": str(result.path)})
    preds = spec.predict_batch(
        [TextInput(text="will it rain in lima"), TextInput(text="book a flight to oslo")]
    )
    assert spec.model_id.endswith(artifact.encoder_id)  # the artifact's encoder, not the bundled
    assert [p.output.label for p in preds] == ["weather", "flights"]  # type: ignore[attr-defined]

    # The artifact keeps its torch weights: a second run can start from it (SST-2 first, then
    # tweets), with a different label set and a new head.
    checkpoint = resolve_init("tiny-ft", tmp_path / "store")
    assert checkpoint == result.path / "checkpoint"
    saved = read_safetensors(checkpoint / "model.safetensors")
    original = read_safetensors(folder / "model.safetensors")
    assert saved.keys() == original.keys()
    assert not np.allclose(
        saved["encoder.layer.0.attention.self.query.weight"],
        original["encoder.layer.0.attention.self.query.weight"],
    )
    three = TextDataset(
        "tiny3",
        "jsonl",
        "tiny3.jsonl",
        {
            "train": Split(
                _dataset().split("train").texts + [f"hello {c}" for c in CITIES] * 3,
                _dataset().split("train").labels + ["greeting"] * 30,
            )
        },
    )
    second = finetune_artifact(
        three,
        "tiny-ft2",
        tmp_path / "store" / "tiny-ft2",
        specialist="intent",
        config=FinetuneConfig(epochs=1, batch_size=8, max_length=16, max_steps=3),
        pretrained=checkpoint,
        cache_dir=None,
    )
    assert second.card["finetune"]["pretrained"].startswith("artifact tiny-ft (")
    assert len(second.card["labels"]) == 3


def test_a_soup_averages_its_members_weights(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer

    from orchestrator.specialists.training.finetune import (
        FinetuneConfig,
        _average,
        _Run,
        finetune_encoder,
    )

    folder = tiny_checkpoint(tmp_path / "tiny")
    split = _dataset().split("train")
    labels = sorted(set(split.labels))
    y = [labels.index(label) for label in split.labels]
    config = FinetuneConfig(epochs=2, learning_rate=1e-3, batch_size=8, max_length=16, soup=2)

    def score(truth: object, pred: object) -> float:
        return float(np.mean(np.asarray(truth) == np.asarray(pred)))

    soup = finetune_encoder(
        split.texts, y, split.texts[:20], y[:20], len(labels), folder / "tokenizer.json",
        config, score=score, pretrained=folder,
    )  # fmt: skip
    # The members again, one by one: the same start, different data order and dropout.
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=16)
    tokenizer.enable_padding()
    run = _Run(torch, tokenizer, split.texts, y, split.texts[:20], y[:20], 2, config, score)
    members = [run.train(m, folder, progress=None) for m in range(2)]
    key = "layers.0.query.weight"
    first, second = (m.encoder_state[key] for m in members)
    assert not torch.allclose(first, second)  # the members differ ...
    assert torch.allclose(soup.encoder.state_dict()[key], (first + second) / 2, atol=1e-6)
    assert soup.history[-1]["soup_of"] == 2.0
    assert {h.get("member") for h in soup.history[:-1]} == {0, 1}
    assert soup.steps == sum(m.steps for m in members)
    mixed = _average(
        [
            {"w": torch.ones(2), "n": torch.tensor([3])},
            {"w": torch.zeros(2), "n": torch.tensor([5])},
        ]
    )
    assert mixed["w"].tolist() == [0.5, 0.5] and mixed["n"].tolist() == [3]  # integers kept
    with pytest.raises(ConfigurationError, match="soup must be at least 1"):
        finetune_encoder(
            split.texts, y, split.texts, y, 2, folder / "tokenizer.json",
            FinetuneConfig(soup=0), score=score, pretrained=folder,
        )  # fmt: skip


def test_the_soup_seed_and_offset_flags_reach_the_fine_tuning_and_the_recorded_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import orchestrator.specialists.training.finetune as finetune

    seen: dict[str, object] = {}

    def record(*args: object, **kwargs: object) -> None:
        seen.update(kwargs)
        raise RuntimeError("stop before training")

    monkeypatch.setattr(finetune, "finetune_artifact", record)
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hi", "label": "a"}\n', encoding="utf-8")
    args = ["specialists", "train", "x", "--data", str(data), "--format", "jsonl"]
    with pytest.raises(RuntimeError, match="stop before training"):
        main([*args, "--specialist", "intent", "--finetune", "--soup", "3", "--seed", "7"])
    assert seen["config"].soup == 3  # type: ignore[attr-defined]
    assert seen["config"].seed == 7  # type: ignore[attr-defined]
    assert "--soup 3" in str(seen["command"]) and "--seed 7" in str(seen["command"])
    assert seen["class_offsets"] is False
    with pytest.raises(RuntimeError, match="stop before training"):
        main([*args, "--specialist", "intent", "--finetune", "--class-offsets"])
    assert seen["class_offsets"] is True and "--class-offsets" in str(seen["command"])
    assert main([*args, "--specialist", "intent", "--finetune", "--soup", "0"]) != 0


def test_init_errors_name_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hi", "label": "a"}\n', encoding="utf-8")
    args = ["specialists", "train", "x", "--data", str(data), "--format", "jsonl"]
    assert main([*args, "--specialist", "intent", "--init", "base"]) != 0
    assert "--init starts a fine-tuning run: add --finetune" in capsys.readouterr().err
    frozen = tmp_path / "store" / "frozen"
    frozen.mkdir(parents=True)
    (frozen / "artifact.json").write_text("{}", encoding="utf-8")
    with pytest.raises(Exception, match="no checkpoint/ folder with torch weights"):
        resolve_init("frozen", tmp_path / "store")
    with pytest.raises(Exception, match="no checkpoint found at nowhere"):
        resolve_init("nowhere", tmp_path / "store")
