"""`orchestrator distill NAME`: a candidate from the base data plus the teacher labels in the
trace store, the promotion gate, rollback, and `traces export`, with a scripted teacher on
small data the tests write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.main import main
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.versions import VersionStore
from tests.intents import (
    CITIES,
    PATTERNS,
    intent_rows,
    record_teacher_labels,
    train_intent_artifact,
)

# The base data knows one phrasing of each intent; the traffic uses the other four.
BASE = slice(0, 1)
TRAFFIC = slice(1, None)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_intent_artifact(tmp_path_factory.mktemp("distill"), "demo", patterns=BASE)


def _fresh(trained: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the trained store and an empty state directory for one test."""
    store = tmp_path / "store"
    shutil.copytree(trained / "store", store)
    return store, tmp_path / "state"


def _teach(state: Path | Any, teacher: dict[str, str] | None = None) -> int:
    return record_teacher_labels(state, intent_rows(CITIES["train"], TRAFFIC), teacher)


def _distill(store: Path, state: Path, trained: Path, *extra: str) -> int:
    args = ["distill", "demo", "--store", str(store), "--state-dir", str(state)]
    return main([*args, "--cache-dir", str(trained / "cache"), *extra, "--json"])


def test_a_better_candidate_is_promoted_and_can_be_rolled_back(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, state = _fresh(trained, tmp_path)
    assert _teach(state) == 4 * 4 * 30
    code = _distill(store, state, trained)
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["distilled"] and report["promoted"], report["reason"]
    assert report["candidate"] == "demo@2" and report["current"] == "demo"
    assert report["teacher_labels"] == 480 and 40 < report["held_out"] < 110
    held = report["gate"]["held_out_accuracy_all"]
    assert held["candidate"] > held["current"]
    # The unversioned artifact became demo@1; demo now serves demo@2.
    assert VersionStore(store).versions("demo") == [1, 2]
    served = load_artifact("demo", store)
    assert served.ref == "demo@2"
    lineage = served.card["lineage"]
    assert (
        lineage["parent"] == "demo"
        and lineage["teacher_labels_trained"] == 480 - report["held_out"]
    )
    assert lineage["promotion"]["promote"] is True and "rule" in lineage["promotion"]
    assert "## Lineage" in (store / "demo@2" / "model_card.md").read_text()

    assert main(["specialists", "rollback", "demo", "--store", str(store)]) == 0
    assert load_artifact("demo", store).ref == "demo@1"


def test_a_worse_candidate_is_refused_and_the_current_version_stays(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, state = _fresh(trained, tmp_path)
    # A teacher that calls every flight request a restaurant booking, and the reverse.
    _teach(state, {"flights": "restaurants", "restaurants": "flights"})
    code = _distill(store, state, trained)
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["distilled"] and not report["promoted"]
    assert report["reason"].startswith("worse on the base validation split"), report["reason"]
    assert VersionStore(store).versions("demo") == [1, 2]  # kept, for the record
    assert load_artifact("demo", store).ref == "demo@1"
    card = load_artifact("demo@2", store).card
    assert card["lineage"]["promotion"]["promote"] is False


def test_too_few_teacher_labels_distil_nothing(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, state = _fresh(trained, tmp_path)
    _teach(state)
    args = ["distill", "demo", "--store", str(store), "--state-dir", str(state)]
    assert main([*args, "--min-labels", "1000"]) == 0
    out = capsys.readouterr().out
    assert "480 teacher labels for demo, fewer than the 1000 asked for" in out
    assert VersionStore(store).versions("demo") == []
    assert main([*args, "--since", "1d", "--min-labels", "1000"]) == 0
    assert "in the time given" in capsys.readouterr().out


def test_traces_export_writes_the_teacher_labels(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, state = _fresh(trained, tmp_path)
    _teach(state)
    out = tmp_path / "demo.jsonl"
    args = ["traces", "export", "demo", "--out", str(out), "--state-dir", str(state)]
    assert main(args) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 480 and rows[0]["source"] == "frontier"
    assert {r["final"]["label"] for r in rows} == set(PATTERNS)
    assert (
        main(["traces", "export", "demo", "--out", str(out), "--state-dir", str(tmp_path / "none")])
        == 3
    )
    assert "no trace store in" in capsys.readouterr().err


def test_traces_kept_in_postgresql_are_exported_and_distilled(
    trained: Path, tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator._traces_postgres import PostgresTraceStore

    store, state = _fresh(trained, tmp_path)
    assert _teach(PostgresTraceStore(database_url)) == 480
    out = tmp_path / "demo.jsonl"
    export = ["traces", "export", "demo", "--out", str(out), "--state-dir", str(state)]
    assert main([*export, "--database-url", database_url]) == 0
    assert len(out.read_text().splitlines()) == 480
    # Without the URL it reads the state directory, where nothing was recorded.
    capsys.readouterr()
    assert main(export) == 3
    assert "pass --database-url for runs kept in PostgreSQL" in capsys.readouterr().err
    assert _distill(store, state, trained, "--database-url", database_url) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["teacher_labels"] == 480 and report["promoted"], report["reason"]
    assert VersionStore(store).versions("demo") == [1, 2]


@pytest.mark.parametrize(
    "mistake",
    [
        ["--since", "not-a-time"],
        ["--min-labels", "0"],
        ["--data", "somewhere"],
        ["--database-url", "mysql://db.example/x"],
        ["--warm-start"],
    ],
)
def test_a_mistake_in_distill_is_refused_before_any_trace_store_is_made(
    tmp_path: Path, mistake: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert main(["distill", "demo", "--state-dir", str(state), *mistake]) == 3
    assert not state.exists()
    assert capsys.readouterr().err.count("\n") == 1  # one line, no traceback


def test_self_labels_add_the_specialists_accepted_answers(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator._traces import Trace, open_trace_store

    store, state = _fresh(trained, tmp_path)
    taught = _teach(state)
    rows = intent_rows(CITIES["train"], BASE)
    traces = open_trace_store(state)
    answered = [
        Trace(
            id=f"own-{i}-{n}",
            run_id=f"own-run-{i}-{n}",
            subtask_id="intent",
            specialist="intent",
            artifact="demo",
            input={"text": row["text"]},
            answer={"label": row["label"]},
            confidence=0.95,
            verdict=verdict,
            final={"label": row["label"]},
            source="specialist",
        )
        for i, row in enumerate(rows)
        # An answer that failed verification is no label, even if nobody replaced it.
        for n, verdict in enumerate(["passed", "confidence 0.40 is below 0.80"][: 1 + i % 2])
    ]
    traces.add(answered)
    traces.close()
    assert _distill(store, state, trained, "--self-labels") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["teacher_labels"] == taught and report["own_answers"] == len(rows)
    lineage = load_artifact("demo@2", store).card["lineage"]
    assert lineage["own_answers_trained"] == len(rows)
    assert lineage["teacher_labels_trained"] == taught - report["held_out"]


def test_the_finetune_switches_of_distill_reach_the_distillation(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import orchestrator.specialists.training.from_traces as from_traces
    from orchestrator.specialists.training.finetune import FinetuneConfig

    seen: dict[str, object] = {}

    def record(name: str, traces: object, **options: object) -> object:
        seen.update(options)
        raise SystemExit(0)  # stop before anything is trained

    monkeypatch.setattr(from_traces, "distill_from_traces", record)
    store, state = _fresh(trained, tmp_path)
    with pytest.raises(SystemExit):
        _distill(store, state, trained, "--finetune", "--warm-start", "--self-labels")
    assert seen["warm_start"] is True and seen["self_labels"] is True
    assert isinstance(seen["finetune"], FinetuneConfig)
