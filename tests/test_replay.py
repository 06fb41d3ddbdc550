"""`orchestrator eval-distill`: the replay evaluation, end to end on small data the tests write
(train/val/test JSONL), with the simulated gold teacher and with recorded teacher answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orchestrator.cli.main import main
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.versions import VersionStore
from tests.intents import write_intent_splits


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_intent_splits(tmp_path_factory.mktemp("replay") / "data")


def _run(
    data: Path, tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, object]:
    code = main(
        [
            "eval-distill",
            "demo",
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--shots",
            "2",
            "--rounds",
            "3",
            "--cache-dir",
            str(tmp / "cache"),
            *extra,
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report: dict[str, object] = json.loads(captured.out)
    return report


def test_replay_reports_every_round_and_keeps_the_versions(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    plot = tmp_path / "replay.png"
    report = _run(data, tmp_path, capsys, "--store", str(store), "--plot", str(plot))
    assert str(report["teacher"]).startswith("simulated teacher (gold labels")
    rounds = report["rounds"]
    assert isinstance(rounds, list) and len(rounds) == 3
    splits = report["splits"]
    assert isinstance(splits, dict)
    assert splits["seed"] == 8 and splits["stream"] == 600 - 8
    assert sum(r["requests"] for r in rounds) == splits["stream"]
    for row in rounds:
        assert set(row) >= {"requests", "frontier_share", "accepted_accuracy", "test_accuracy"}
        assert row["version"].startswith("demo@")
        assert row["escalated"] == round(row["frontier_share"] * row["requests"])
        cost = row["cost"]
        # The escalations make the cost; the specialist's CPU time adds a little.
        frontier = row["frontier_share"] * cost["all_frontier_per_1000_requests_usd"]
        assert cost["per_1000_requests_usd"] == pytest.approx(frontier, rel=0.1, abs=0.01)
        assert cost["per_1000_requests_usd"] > 0
    assert rounds[0]["version"] == "demo@1"
    # Every round's candidate is kept; the promoted ones serve the later rounds.
    kept = VersionStore(store)
    assert kept.versions("demo") == [1, 2, 3, 4]
    promoted = [r["distilled"]["candidate"] for r in rounds if r["distilled"]["promoted"]]
    final = report["final"]
    assert isinstance(final, dict)
    assert final["version"] == (promoted[-1] if promoted else "demo@1")
    assert load_artifact("demo", store).ref == final["version"]
    card = load_artifact("demo@2", store).card
    assert card["lineage"]["parent"] == "demo@1"
    assert card["lineage"]["teacher_labels_trained"] + card["lineage"]["teacher_labels_held_out"]
    assert plot.stat().st_size > 10_000


def test_replay_with_recorded_teacher_answers(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = tmp_path / "teacher.jsonl"
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    # The recorded teacher answered half of the requests, with its usage.
    answers.write_text(
        "".join(
            json.dumps({**r, "input_tokens": 500, "output_tokens": 20}) + "\n" for r in rows[::2]
        )
    )
    report = _run(data, tmp_path, capsys, "--teacher", str(answers))
    assert str(report["teacher"]).startswith("recorded teacher answers (300 in")
    rounds = report["rounds"]
    assert isinstance(rounds, list)
    assert sum(r["unanswered"] for r in rounds) > 0
    assert all(r["teacher_labels"] + r["unanswered"] == r["escalated"] for r in rounds)
    assert report["store"] is None  # a temporary store, gone after the run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shots", "150"], "--shots 150: 4 label(s) have no more than 150"),
        (["--teacher-noise", "1.5"], "--teacher-noise 1.5"),
        (["--teacher", "nope.jsonl"], "--teacher nope.jsonl: no such file"),
        (["--rounds", "0"], "--rounds 0"),
        (["--format", "sst2"], "--format 'sst2': the replay reads"),
        (["--epochs", "5"], "--epochs, --lr, --max-length, --threads and --warm-start need"),
        (["--warm-start"], "--epochs, --lr, --max-length, --threads and --warm-start need"),
    ],
)
def test_replay_mistakes_are_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = ["eval-distill", "demo", "--data", str(data), "--format", "jsonl"]
    assert main([*base, "--cache-dir", str(tmp_path / "cache"), *args]) == 3
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("warm_start", [False, True], ids=["from-pretrained", "warm-start"])
def test_replay_with_fine_tuned_candidates_reads_through_the_promoted_encoder(
    data: Path, tmp_path: Path, warm_start: bool
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from orchestrator.specialists.evaluation.datasets import load_dataset
    from orchestrator.specialists.evaluation.replay import GoldTeacher, ReplayConfig, run_replay
    from orchestrator.specialists.training.finetune import FinetuneConfig
    from tests.tiny_encoder import tiny_checkpoint

    dataset = load_dataset(data, "jsonl")
    store = tmp_path / "store"
    report = run_replay(
        dataset,
        "demo",
        teacher=GoldTeacher(dataset.label_set()),
        config=ReplayConfig(shots=2, rounds=3),
        store=store,
        cache_dir=tmp_path / "cache",
        finetune=FinetuneConfig(
            epochs=8, learning_rate=1e-3, head_learning_rate=1e-2, batch_size=16, max_length=16
        ),
        pretrained=tiny_checkpoint(tmp_path / "tiny"),
        warm_start=warm_start,
    )
    assert report.config["finetune"]["epochs"] == 8
    assert report.config["warm_start"] is warm_start
    assert report.rounds[0].version == "demo@1"
    first = load_artifact("demo@1", store)
    assert first.encoder_file is None  # the first version: a head over the bundled encoder
    warm_starts = 0
    for number in (2, 3, 4):
        candidate = load_artifact(f"demo@{number}", store)
        # Each candidate carries its own encoder and records how it was made.
        assert candidate.encoder_file == "encoder.onnx"
        assert candidate.encoder_id.startswith("finetuned:demo@")
        assert candidate.card["finetune"]["train_examples"] > 8
        assert candidate.card["lineage"]["base_examples"] == 8
        assert candidate.card["version"] == number
        # Where its fine-tuning started: the serving version's encoder once that one is
        # fine-tuned and the replay warm-starts, else the pretrained checkpoint.
        parent = candidate.card["lineage"]["parent"]
        warm = warm_start and parent != "demo@1"
        warm_starts += warm
        assert candidate.card["lineage"]["warm_start"] == (parent if warm else None)
        started = candidate.card["finetune"]["pretrained"]
        assert started.startswith(f"artifact {parent} (" if warm else "checkpoint ")
    assert (warm_starts > 0) is warm_start
    outcomes = [r.distilled for r in report.rounds]
    assert all(o["cpu_seconds"] > 0 and "held_out_accuracy" in o["gate"] for o in outcomes)
    # The tiny encoder learns the four intents: a fine-tuned candidate is promoted, and the
    # round after it is served by it, read through its own encoder (it escalates less).
    promoted = [i for i, o in enumerate(outcomes) if o["promoted"]]
    assert promoted and promoted[0] < 2
    after = report.rounds[promoted[0] + 1]
    assert after.version == outcomes[promoted[0]]["candidate"]
    assert after.frontier_share < report.rounds[0].frontier_share / 2
    final = load_artifact("demo", store)
    assert final.ref == report.final["version"] and final.encoder_file
    # Scoring the test split again through the final version's own encoder gives the same.
    from orchestrator.specialists.artifacts import artifact_encoder
    from orchestrator.specialists.training.embeddings import embed_texts

    test = dataset.split("test")
    x = embed_texts(artifact_encoder(final), test.texts, cache_dir=None)
    pred = np.asarray(final.labels)[final.accepted(x)[0]]
    assert report.final["accuracy"] == pytest.approx(float((pred == test.labels).mean()))


def test_self_labels_train_candidates_on_the_accepted_answers(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    report = _run(data, tmp_path, capsys, "--store", str(store), "--self-labels")
    assert report["config"]["self_labels"] is True  # type: ignore[index]
    rounds = report["rounds"]
    assert isinstance(rounds, list)
    accepted = 0
    for number, row in enumerate(rounds, start=2):
        accepted += row["requests"] - row["escalated"]
        # Every answer the serving versions accepted so far is trained on, beside the
        # teacher labels, and the card says how many.
        assert row["distilled"]["own_answers"] == accepted
        lineage = load_artifact(f"demo@{number}", store).card["lineage"]
        assert lineage["own_answers_trained"] == accepted
    # Without the switch no candidate trains on its own answers.
    plain = _run(data, tmp_path / "plain", capsys)
    assert all(r["distilled"]["own_answers"] == 0 for r in plain["rounds"])  # type: ignore[union-attr]


def test_the_printed_replay_says_how_its_candidates_learned(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval-distill", "demo", "--data", str(data), "--format", "jsonl", "--shots", "2"]
    cache = ["--cache-dir", str(tmp_path / "cache"), "--rounds", "2", "--self-labels"]
    assert main([*args, *cache]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "(self-labels)" in printed and "over the bundled encoder" in printed
    assert "demo@1" in printed and "$/1k" in printed
