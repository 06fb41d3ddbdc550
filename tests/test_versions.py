"""Artifact versions in the store: NAME@N, the promoted version, promotion and rollback, and
today's unversioned artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.artifacts import Artifact, load_artifact, resolve_artifact
from orchestrator.specialists.calibration import Calibrator
from orchestrator.specialists.heads import Head, HeadConfig
from orchestrator.specialists.training.artifacts import write_artifact, write_version
from orchestrator.specialists.versions import VersionRef, VersionStore, parse_version_ref


def _artifact(name: str, bias: float) -> Artifact:
    params = {
        "mean": np.zeros(2, dtype=np.float32),
        "scale": np.ones(2, dtype=np.float32),
        "w_out": np.eye(2, dtype=np.float32),
        "b_out": np.array([bias, 0.0], dtype=np.float32),
    }
    return Artifact(
        name=name,
        specialist="intent",
        labels=("a", "b"),
        head=Head(params, HeadConfig()),
        calibrator=Calibrator(),
        threshold=0.5,
        encoder_id="test-encoder",
    )


def _card(name: str, note: str) -> dict[str, object]:
    return {
        "name": name,
        "note": note,
        "specialist": "intent",
        "encoder": "test-encoder",
        "head": "linear",
        "data": {"source": "written by the test", "format": "jsonl", "splits": {"train": 4}},
        "labels": ["a", "b"],
        "calibration": {"method": "none", "temperature": 1.0, "ece_before": 0, "ece_after": 0},
        "threshold": {
            "value": 0.5,
            "target_precision": 0.9,
            "precision": 0.9,
            "coverage": 1.0,
            "reached": True,
        },
        "created": "2026-01-01T00:00:00+00:00",
        "command": "written by the test",
    }


def test_version_references_parse() -> None:
    assert parse_version_ref("intent@3") == VersionRef("intent", 3)
    assert parse_version_ref("intent") == VersionRef("intent")
    assert str(VersionRef("intent", 3)) == "intent@3"
    assert parse_version_ref("some/dir") is None
    assert parse_version_ref("x@y") is None


def test_versions_are_added_pinned_promoted_and_rolled_back(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    assert store.versions("demo") == [] and store.promoted("demo") is None
    for bias in (0.0, 1.0, 2.0):
        write_version(store, _artifact("demo", bias), _card("demo", f"bias {bias}"))
    assert store.versions("demo") == [1, 2, 3]
    assert store.promoted("demo") is None  # writing a version never promotes it
    with pytest.raises(ConfigurationError, match="no trained artifact 'demo'"):
        resolve_artifact("demo", tmp_path)

    store.promote("demo", 1)
    store.promote("demo", 3, reason="better")
    assert load_artifact("demo", tmp_path).version == 3
    assert load_artifact("demo@2", tmp_path).card["note"] == "bias 1.0"
    assert load_artifact("demo@2", tmp_path).ref == "demo@2"

    assert store.rollback("demo") == 1
    assert load_artifact("demo", tmp_path).version == 1
    with pytest.raises(ConfigurationError, match="nothing to roll back to"):
        store.rollback("demo")
    events = [e["event"] for e in store.index("demo")["history"]]
    assert events == ["added"] * 3 + ["promoted", "promoted", "rolled_back"]
    with pytest.raises(ConfigurationError, match=r"no version demo@7 .*versions: @1, @2, @3"):
        load_artifact("demo@7", tmp_path)
    with pytest.raises(ConfigurationError, match="no version demo@9"):
        store.promote("demo", 9)


def test_rollback_walks_back_through_promotions(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    for bias in (0.0, 1.0, 2.0, 3.0):
        write_version(store, _artifact("demo", bias), _card("demo", ""))
    for version in (1, 2, 4):
        store.promote("demo", version)
    assert store.rollback("demo") == 2
    assert store.rollback("demo") == 1
    store.promote("demo", 3)
    assert store.rollback("demo") == 1


def test_an_unversioned_artifact_is_served_until_a_version_adopts_it(tmp_path: Path) -> None:
    legacy = _artifact("old", 0.0)
    write_artifact(tmp_path / "old", legacy, _card("old", "trained before versions"))
    assert load_artifact("old", tmp_path).version is None
    assert load_artifact("old", tmp_path).ref == "old"

    store = VersionStore(tmp_path)
    assert write_version(store, _artifact("old", 5.0), _card("old", "distilled")) == 2
    assert store.versions("old") == [1, 2]
    assert load_artifact("old@1", tmp_path).card["note"] == "trained before versions"
    # The adopted copy is promoted; the new version waits for its own promotion.
    assert load_artifact("old", tmp_path).version == 1
    assert (tmp_path / "old" / "artifact.json").is_file()  # the original stays where it was
    card = json.loads((tmp_path / "old@2" / "model_card.json").read_text())
    assert card["version"] == 2


def test_a_damaged_index_is_one_clear_error(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    write_version(store, _artifact("demo", 0.0), _card("demo", ""))
    (tmp_path / "demo.versions.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"demo.versions.json: unreadable version index"):
        load_artifact("demo", tmp_path)


def test_versions_promote_and_rollback_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli.main import main

    store = VersionStore(tmp_path)
    for bias in (0.0, 1.0):
        write_version(store, _artifact("demo", bias), _card("demo", ""))
    where = ["--store", str(tmp_path)]
    assert main(["specialists", "promote", "demo@1", *where]) == 0
    assert main(["specialists", "promote", "demo@2", *where]) == 0
    assert "demo@2 is promoted (was @1)" in capsys.readouterr().out
    assert main(["specialists", "versions", "demo", *where, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["promoted"] == 2 and [v["version"] for v in listed["versions"]] == [1, 2]
    assert main(["specialists", "rollback", "demo", *where]) == 0
    assert "demo@1 is promoted again (was @2)" in capsys.readouterr().out
    assert store.promoted("demo") == 1

    assert main(["specialists", "promote", "demo", *where]) == 3
    assert "name the version to promote as NAME@N" in capsys.readouterr().err
    assert main(["specialists", "versions", "other", *where]) == 3
    assert "other has no versions" in capsys.readouterr().err
