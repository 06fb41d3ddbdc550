"""The shipped contract_review graph, run on a clauses artifact trained on tiny contracts."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import GraphSpec, Orchestrator
from orchestrator._errors import ConfigurationError
from orchestrator.cli.main import main

from .conftest import GRAPHS
from .test_clauses import _contract, _write_cuad


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review")
    data = _write_cuad(root / "cuad", 14)
    store = root / "store"
    argv = ["specialists", "train", "clauses", "--format", "cuad", "--data", str(data)]
    assert main([*argv, "--store", str(store), "--seed", "3", "--json"]) == 0
    return store / "clauses"


def review_graph(artifact: Path) -> GraphSpec:
    spec = GraphSpec.from_file(GRAPHS / "contract_review.yaml")
    binding = spec.specialists["clauses"].model_copy(
        update={"options": {"artifact": str(artifact)}}
    )
    return spec.model_copy(update={"specialists": {"clauses": binding}})


def test_the_review_routes_on_the_clauses_found_with_verified_spans(artifact: Path) -> None:
    text, _ = _contract(20)
    orc = Orchestrator(review_graph(artifact), inprocess=True, checkpointer="none")
    result = orc.run(text)
    assert result.status == "ok", result.error
    found = result.fields["clauses.found"]
    assert found.provenance.verified and found.value
    # No high-risk category in these contracts: the standard review applies.
    assert result.fields["review"].value == "standard"
    (report,) = result.subtasks
    spans = report.output["categories"][found.value[0]]["spans"]
    assert spans and all(text[s["start"] : s["end"]] == s["text"] for s in spans)


def test_without_a_trained_artifact_the_graph_refuses_to_start(tmp_path: Path) -> None:
    orc = Orchestrator(review_graph(tmp_path / "missing"), inprocess=True, checkpointer="none")
    with pytest.raises(ConfigurationError, match="specialists train clauses --format cuad"):
        orc.run("This Agreement is governed by the laws of Ohio.")
