"""Training, calibration, evaluation and artifacts of the text specialists, on small data
that the tests write themselves."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from orchestrator import GraphSpec, Orchestrator
from orchestrator.cli.main import main
from orchestrator.specialists import TextInput
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.backends.batching import MicroBatcher
from orchestrator.specialists.calibration import Calibrator
from orchestrator.specialists.evaluation.classifiers import (
    classification_metrics,
    per_class_metrics,
    risk_coverage,
)
from orchestrator.specialists.intent import IntentSpecialist
from orchestrator.specialists.training.calibration import (
    expected_calibration_error,
    fit_calibrator,
    fit_class_bias,
    threshold_for_precision,
)
from orchestrator.specialists.training.heads import macro_recall
from tests.intents import TRIAGE

TOPICS = {
    "weather": ["the weather in {c}", "will it rain in {c}", "how hot is it in {c} today"],
    "flights": ["book a flight to {c}", "flights from here to {c}", "cheapest plane ticket to {c}"],
    "music": [
        "play some jazz from {c}",
        "put on a song by a band from {c}",
        "play the radio of {c}",
    ],
}
CITIES = ["paris", "tokyo", "lima", "oslo", "cairo", "rome", "delhi", "quito", "accra", "seoul"]
OOS = [
    "what is the meaning of life",
    "how many legs does a spider have",
    "tell me a riddle",
    "who painted the mona lisa",
    "what is two plus two",
    "how do magnets work",
]


def _rows() -> list[dict[str, str]]:
    rows = [
        {"text": pattern.format(c=city), "label": label}
        for label, patterns in TOPICS.items()
        for pattern in patterns
        for city in CITIES
    ]
    # Examples of "none of these" (CLINC150's `oos` convention) teach the refusal.
    return rows + [{"text": text, "label": "oos"} for text in OOS]


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pack")
    data = _write_jsonl(root / "intents.jsonl", _rows())
    code = main(
        [
            "specialists",
            "train",
            "demo",
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--specialist",
            "intent",
            "--store",
            str(root / "store"),
            "--cache-dir",
            str(root / "cache"),
            "--json",
        ]
    )
    assert code == 0
    return root


def test_train_writes_an_artifact_with_a_model_card_and_no_leftovers(trained: Path) -> None:
    folder = trained / "store" / "demo"
    assert {p.name for p in folder.iterdir()} == {
        "artifact.json",
        "head.npz",
        "model_card.json",
        "model_card.md",
        "out_of_scope.npz",  # the data has an out-of-scope label
    }
    assert [p.name for p in (trained / "store").iterdir()] == ["demo"]  # no temp dirs
    card = json.loads((folder / "model_card.json").read_text())
    assert card["labels"] == ["flights", "music", "oos", "weather"]
    assert "specialists train demo" in card["command"]
    assert card["data"]["format"] == "jsonl" and card["data"]["notes"]  # held-out validation
    assert 0.0 < card["threshold"]["value"] <= 1.0
    assert "Model card: demo" in (folder / "model_card.md").read_text()
    artifact = load_artifact("demo", trained / "store")
    assert artifact.labels == ("flights", "music", "oos", "weather")
    assert artifact.oos_label == "oos" and artifact.specialist == "intent"


def test_trained_intent_answers_known_intents(trained: Path) -> None:
    spec = IntentSpecialist({"artifact": "demo", "store": str(trained / "store")})
    (pred,) = spec.predict_batch([TextInput(text="is it going to rain in berlin")])
    assert pred.output.label == "weather"  # type: ignore[attr-defined]
    assert "out_of_scope" in spec.labels and "weather" in spec.labels


def test_graph_binding_with_an_artifact_answers_out_of_scope(trained: Path) -> None:
    store = trained / "store"
    graph = f"""\
version: 1
name: oos
specialists:
  intent:
    options: {{artifact: demo, store: "{store}"}}
{TRIAGE}"""
    orc = Orchestrator(GraphSpec.from_text(graph), checkpointer="none", inprocess=True)
    off = orc.run("Describe the history of the Ottoman empire's tax policy in detail.")
    on = orc.run("book me a flight to madrid")
    assert off.value("intent.label") == "out_of_scope"
    assert on.value("intent.label") == "flights"


def test_temperature_scaling_fixes_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    n, k = 2000, 4
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k)).astype(np.float32)
    logits[np.arange(n), y] += 1.0  # right about half the time...
    logits *= 8.0  # ...but nearly certain every time
    before = _ece(logits, y)
    cal = fit_calibrator(logits, y, "temperature")
    p = cal.probabilities(logits)
    after = expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == y)
    assert cal.temperature > 2.0 and after < before / 3
    iso = fit_calibrator(logits, y, "isotonic").probabilities(logits)
    assert expected_calibration_error(iso.max(axis=1), iso.argmax(axis=1) == y) <= before


def _shifted(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced 3-class logits whose labels follow softmax(logits + true offsets)."""
    rng = np.random.default_rng(seed)
    shift = np.array([-1.0, 0.4, 0.6])
    y = np.repeat(np.arange(3), n // 3)
    logits = rng.normal(0, 1, (len(y), 3)) + 2.0 * np.eye(3)[y] - shift
    return logits.astype(np.float32), y, shift - shift.mean()


def test_class_bias_recovers_offsets_and_lifts_held_out_macro_recall() -> None:
    logits, y, offsets = _shifted(6000, 0)
    bias = np.array(fit_class_bias(logits, y))
    assert np.allclose(bias, offsets, atol=0.15) and abs(bias.sum()) < 1e-6
    held, y_held, _ = _shifted(6000, 1)
    before = macro_recall(y_held, held.argmax(axis=1))
    after = macro_recall(y_held, (held + bias).argmax(axis=1))
    assert after > before + 0.05
    # The calibrator applies them after the temperature and keeps them in its JSON; an artifact
    # written before offsets existed still loads without any.
    cal = fit_calibrator(logits, y, "temperature", balance_classes=True)
    assert len(cal.class_bias) == 3 and Calibrator.from_json(cal.to_json()) == cal
    assert macro_recall(y_held, cal.probabilities(held).argmax(axis=1)) == pytest.approx(
        after, abs=0.01
    )
    for method in ("isotonic", "none"):  # offsets go with every calibration method
        other = fit_calibrator(logits, y, method, balance_classes=True)
        assert np.allclose(other.class_bias, cal.class_bias, atol=0.2)
    old = {"method": "temperature", "temperature": 1.5, "iso_x": [], "iso_y": []}
    assert Calibrator.from_json(old).class_bias == ()
    assert fit_calibrator(logits, y, "temperature").class_bias == ()


def test_class_bias_leaves_a_class_missing_from_validation_alone() -> None:
    logits, y, _ = _shifted(600, 2)
    keep = y != 2
    bias = fit_class_bias(logits[keep], y[keep])
    assert bias[2] == 0.0 and bias[0] != 0.0


def _ece(logits: np.ndarray, y: np.ndarray) -> float:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == y)


def test_threshold_meets_the_target_precision_on_held_out_data() -> None:
    rng = np.random.default_rng(1)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        conf = rng.uniform(0, 1, n)
        return conf, rng.uniform(0, 1, n) < conf  # confidence = probability of being right

    conf, correct = sample(20_000)
    chosen = threshold_for_precision(conf, correct, 0.9)
    assert chosen.reached and chosen.precision >= 0.9
    held_conf, held_correct = sample(20_000)
    accepted = held_conf >= chosen.value
    assert held_correct[accepted].mean() >= 0.89  # holds out of sample, up to noise
    unreachable = threshold_for_precision(conf, np.zeros_like(correct), 0.9)
    assert not unreachable.reached


def test_metrics_match_hand_computed_values() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(truth, pred)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1: a = 2*1*(2/3)/(5/3) = 0.8; b = 0.5; c = 2*0.5*1/1.5 = 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["macro_recall"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    curve = risk_coverage(np.array([0.9, 0.8, 0.7, 0.6]), np.array([True, True, False, True]), 5)
    # escalating 0%, ~25%, ~50%, ~75%, 99% of the least confident answers
    assert curve["accuracy"][0] == pytest.approx(0.75)
    assert curve["accuracy"][2] == pytest.approx(1.0)


def test_eval_reports_metrics_and_writes_readable_plots(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_jsonl(trained / "test.jsonl", _rows()[::3])
    code = main(
        [
            "eval",
            "demo",
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--split",
            "train",
            "--store",
            str(trained / "store"),
            "--cache-dir",
            str(trained / "cache"),
            "--plots",
            str(trained / "plots"),
            "--latency-samples",
            "12",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["accuracy"] > 0.9 and report["metrics"]["latency_p50_ms"] > 0
    for name in ("risk_coverage.png", "confusion.png"):
        assert (trained / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = report["per_class"]
    assert sum(r["support"] for r in rows.values()) == report["metrics"]["examples"]
    assert sum(r["predicted"] for r in rows.values()) == report["metrics"]["examples"]
    assert np.mean([rows[c]["recall"] for c in ("flights", "music", "weather")]) > 0.9
    # Without --json the same numbers come as a table per label.
    argv = ["eval", "demo", "--data", str(data), "--format", "jsonl", "--split", "train"]
    argv += ["--store", str(trained / "store"), "--cache-dir", str(trained / "cache")]
    assert main([*argv, "--latency-samples", "0"]) == 0
    printed = capsys.readouterr().out
    assert "per label" in printed and "weather" in printed


def test_per_class_metrics_count_support_predictions_precision_and_recall() -> None:
    rows = per_class_metrics(["a", "a", "b", "c"], ["a", "b", "b", "b"], ["a", "b", "c"])
    assert rows["a"] == {"support": 2, "predicted": 1, "precision": 1.0, "recall": 0.5}
    assert rows["b"]["predicted"] == 3 and rows["b"]["precision"] == pytest.approx(1 / 3)
    assert rows["c"] == {"support": 1, "predicted": 0, "precision": 0.0, "recall": 0.0}


@pytest.mark.parametrize(
    ("content", "fmt", "extra", "message"),
    [
        ('{"text": "hi", "label": "a"}\n', "clinc150", [], "expected a JSON object with keys"),
        ("", "csv", [], "the file is empty"),
        ("text,intent\nhello,a\nbye,b\n", "csv", [], "no column 'label'"),
        ("text,label\nhello,a\nhi,a\nbye,b\n", "csv", [], "'b' (1 example)"),
        ("text,label\nhello,a\n", "jsonl", [], "not a JSON object"),
    ],
    ids=["wrong-format", "empty-file", "unknown-label-column", "one-example-label", "bad-jsonl"],
)
def test_bad_data_is_a_clear_error_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    fmt: str,
    extra: list[str],
    message: str,
) -> None:
    data = tmp_path / f"data.{'json' if fmt == 'clinc150' else fmt}"
    data.write_text(content, encoding="utf-8")
    store = tmp_path / "store"
    code = main(
        [
            "specialists",
            "train",
            "bad",
            "--data",
            str(data),
            "--format",
            fmt,
            "--specialist",
            "intent",
            "--store",
            str(store),
            "--cache-dir",
            str(tmp_path / "c"),
            *extra,
        ]
    )
    assert code == 3
    error = capsys.readouterr().err
    assert message in error and str(data) in error
    assert not store.exists() or not any(store.iterdir())


def test_micro_batcher_coalesces_concurrent_calls_into_fewer_passes() -> None:
    gate = threading.Event()
    seen: list[int] = []

    def encode(texts: list[str]) -> np.ndarray:
        seen.append(len(texts))
        gate.wait(0.05)  # a slow forward pass, so that the others queue up behind it
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)

    batcher = MicroBatcher(encode, max_wait_s=0.01)  # type: ignore[arg-type]
    results: dict[int, float] = {}

    def call(i: int) -> None:
        results[i] = float(batcher([f"x{'y' * i}"])[0, 0])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: float(i + 1) for i in range(16)}  # every caller got its own row
    assert batcher.passes < 16 and max(seen) > 1


def test_micro_batcher_runs_one_pass_at_a_time_and_a_lone_caller_never_waits() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def encode(texts: list[str]) -> np.ndarray:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return np.zeros((len(texts), 1), dtype=np.float32)

    batcher = MicroBatcher(encode, max_wait_s=0.5)  # type: ignore[arg-type]
    start = time.perf_counter()
    for _ in range(3):
        batcher(["alone"])
    assert time.perf_counter() - start < 0.4  # no 0.5 s wait for company that never comes
    assert batcher.passes == 3

    with ThreadPoolExecutor(24) as pool:
        list(pool.map(lambda i: batcher([f"t{i}"]), range(96)))
    assert most == 1  # passes never overlap: they would only share the same cores
    assert batcher.passes < 3 + 96


def test_micro_batcher_hands_a_failure_to_every_caller_of_the_pass() -> None:
    def encode(texts: list[str]) -> np.ndarray:
        time.sleep(0.01)
        raise RuntimeError("model died")

    batcher = MicroBatcher(encode, max_wait_s=0.01)  # type: ignore[arg-type]

    def call(i: int) -> str:
        try:
            batcher([f"t{i}"])
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(16))) == ["model died"] * 16


def test_micro_batcher_needs_at_least_one_pass() -> None:
    with pytest.raises(ValueError, match="max_passes"):
        MicroBatcher(lambda texts: np.zeros((0, 1), dtype=np.float32), max_passes=0)


def test_verification_uses_the_artifacts_calibrated_threshold(trained: Path) -> None:
    store = trained / "store"
    artifact = load_artifact("demo", store)
    graph = f"""\
name: thresholds
specialists:
  intent:
    options: {{artifact: demo, store: "{store}"}}
  strict:
    uses: intent
    min_confidence: 1.0
    options: {{artifact: demo, store: "{store}"}}
nodes:
  triage:
    kind: specialists
    subtasks:
      - {{id: a, specialist: intent}}
      - {{id: b, specialist: strict}}
edges:
  - {{from: START, to: triage}}
"""
    result = Orchestrator(GraphSpec.from_text(graph), checkpointer="none", inprocess=True).run(
        "book me a flight to madrid"
    )
    a = next(s for s in result.subtasks if s.id == "a")
    b = next(s for s in result.subtasks if s.id == "b")
    assert a.confidence is not None
    # no min_confidence on the binding: the artifact's own threshold decides
    assert a.verified == (a.confidence >= artifact.threshold)
    # an explicit min_confidence wins over the artifact's threshold
    assert not b.verified and any("below 1.00" in r for r in b.reasons)


def test_class_offsets_are_fitted_when_asked_and_recorded_in_the_card(tmp_path: Path) -> None:
    words = {
        "negative": ["awful", "terrible", "horrible", "dreadful", "miserable"],
        "neutral": ["ordinary", "scheduled", "listed", "located", "printed"],
        "positive": ["wonderful", "lovely", "fantastic", "delightful", "brilliant"],
    }
    things = ["film", "meal", "trip", "concert", "hotel", "book", "game", "class"]
    rows = [
        {"text": f"the {thing} was {word}", "label": label}
        for label, group in words.items()
        for word in group
        for thing in things
    ]
    data = _write_jsonl(tmp_path / "sentiment.jsonl", rows)
    argv = ["specialists", "train", "tone", "--data", str(data), "--format", "jsonl"]
    argv += ["--specialist", "sentiment", "--store", str(tmp_path / "store")]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--json"]
    assert main([*argv, "--class-offsets"]) == 0
    folder = tmp_path / "store" / "tone"
    card = json.loads((folder / "model_card.json").read_text())
    assert card["variant"] == "three_class" and len(card["calibration"]["class_bias"]) == 3
    assert "class offsets negative" in (folder / "model_card.md").read_text()
    assert card["command"].endswith("--class-offsets")
    artifact = load_artifact("tone", tmp_path / "store")
    assert artifact.calibrator.class_bias == tuple(card["calibration"]["class_bias"])
    # Off unless asked for: the plain command trains a calibration without offsets.
    assert main([*argv[:2], "plain", *argv[3:]]) == 0
    assert load_artifact("plain", tmp_path / "store").calibrator.class_bias == ()


def test_seed_without_finetune_is_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_jsonl(tmp_path / "intents.jsonl", _rows())
    argv = ["specialists", "train", "x", "--data", str(data), "--format", "jsonl", "--seed", "3"]
    assert main([*argv, "--store", str(tmp_path / "store")]) != 0
    assert "--seed" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()
    cuad = ["specialists", "train", "clauses", "--data", str(tmp_path), "--format", "cuad"]
    assert main([*cuad, "--class-offsets"]) != 0
    assert "--class-offsets applies to the text classifiers" in capsys.readouterr().err
