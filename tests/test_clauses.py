"""The clauses specialist: CUAD loader, segments, CUAD metric, training, verification, on tiny
contracts that the tests write themselves."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator import GraphSpec, Orchestrator
from orchestrator._contracts import SpecialistResult
from orchestrator._errors import ConfigurationError
from orchestrator.agents._planner import LocalPlanner
from orchestrator.cli.main import main
from orchestrator.specialists import SpecialistRegistry, TextInput
from orchestrator.specialists._base import Prediction, Specialist
from orchestrator.specialists.clause_model import load_clause_model, segment
from orchestrator.specialists.clauses import (
    CategoryResult,
    ClausesOutput,
    ClauseSpan,
    ClausesSpecialist,
    ContractInput,
)
from orchestrator.specialists.evaluation.cuad import Contract, load_cuad, locate, split_contracts
from orchestrator.specialists.evaluation.datasets import DataError
from orchestrator.specialists.training.clauses import (
    Question,
    cuad_metrics,
    jaccard,
    platt,
    segment_labels,
)
from orchestrator.steps import StepContext
from orchestrator.tools._toolset import InProcessToolset

CATEGORIES = ["Document Name", "Agreement Date", "Governing Law", "Termination for Convenience"]
STATES = ["New York", "Delaware", "California", "Texas", "Ohio", "Nevada", "Oregon", "Utah"]
FILLER = [
    "The Supplier shall deliver the Products to the warehouse of the Customer.",
    "All invoices are payable within thirty days of receipt.",
    "Each party shall keep the confidential information of the other party secret.",
    "The Customer may inspect the Products upon delivery and reject defective units.",
    "Notices shall be sent in writing to the addresses stated above.",
    "The Supplier warrants that the Products conform to the specifications.",
]


def _contract(i: int) -> tuple[str, dict[str, list[str]]]:
    title = f"SUPPLY AGREEMENT NUMBER {i}"
    date = f"March {i + 1}, 2020"
    law = f"This Agreement shall be governed by the laws of the State of {STATES[i % 8]}."
    convenience = (
        "Either party may terminate this Agreement for convenience upon ninety days written "
        "notice to the other party."
    )
    body = [
        title,
        "",
        f"This Supply Agreement is made on {date} between Acme Corp and Beta LLC.",
        *FILLER[i % 3 : i % 3 + 3],
        law,
        *FILLER[3:],
    ]
    answers: dict[str, list[str]] = {
        "Document Name": [title],
        "Agreement Date": [date],
        "Governing Law": [law],
        "Termination for Convenience": [],
    }
    if i % 2 == 0:
        body.insert(5, convenience)
        answers["Termination for Convenience"] = [convenience]
    return "\n".join(body) + "\n", answers


def _write_cuad(
    root: Path, n: int = 14, *, columns: Sequence[str] = CATEGORIES, rows: Any = None
) -> Path:
    (root / "full_contract_txt").mkdir(parents=True)
    records = []
    for i in range(n):
        text, answers = _contract(i)
        # One name exercises the release's filename rule ('&' -> '_', no trailing dots).
        stem = f"ACME_{i}_Supply Agreement" if i != 3 else "ACME & SONS_3_Supply Agreement."
        txt_stem = stem.replace("&", "_").rstrip(".")
        (root / "full_contract_txt" / f"{txt_stem}.txt").write_text(text, encoding="utf-8")
        row = {"Filename": f"{stem}.pdf"}
        for c in columns:
            row[c] = repr(answers.get(c, []))
            row[f"{c}-Answer"] = "Yes" if answers.get(c) else "No"
        records.append(row)
    header = ["Filename", *(x for c in columns for x in (c, f"{c}-Answer"))]
    with (root / "master_clauses.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows if rows is not None else records)
    return root


# -- loader ------------------------------------------------------------------------------------
def test_loader_maps_filenames_and_recovers_offsets(tmp_path: Path) -> None:
    data = load_cuad(_write_cuad(tmp_path))
    assert len(data.contracts) == 14 and data.categories == tuple(CATEGORIES)
    assert data.notes == []
    for contract in data.contracts:
        for category, spans in contract.spans.items():
            assert [contract.text[s:e] for s, e in spans] == sorted(
                contract.answers[category], key=contract.text.find
            )
    names = {c.name for c in data.contracts}
    assert "ACME _ SONS_3_Supply Agreement" in names


def test_locate_splits_nothing_but_matches_any_whitespace_and_skips_taken_spans() -> None:
    text = "The  Term\nshall be one year. The Term shall be one year."
    first = locate(text, "The Term shall be one year.", set())
    assert first == (text.index("The Term s"), len(text))
    second = locate(text, "The Term shall be one year.", {first})  # type: ignore[arg-type]
    assert second is not None and text[second[0] : second[1]].startswith("The  Term\n")
    assert locate(text, "no such clause", set()) is None


def test_omitted_marker_gives_one_answer_per_part(tmp_path: Path) -> None:
    root = _write_cuad(tmp_path, 2)
    with (root / "master_clauses.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows[0]["Governing Law"] = repr(["This Agreement shall be governed <omitted> of New York."])
    with (root / "master_clauses.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    first = load_cuad(root).contracts[0]
    assert first.answers["Governing Law"] == ("This Agreement shall be governed", "of New York.")
    assert len(first.spans["Governing Law"]) == 2


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_csv", "master_clauses.csv: file not found"),
        ("empty_csv", "the file is empty"),
        ("header_only", "no contracts"),
        ("unknown_column", "unknown category column 'Force Majeure'"),
        ("unmatched", "matches no text file"),
        ("bad_cell", "is not a Python list literal"),
        ("no_folder", "no such folder"),
    ],
)
def test_bad_cuad_data_names_the_file_and_the_fix(
    tmp_path: Path, breakage: str, message: str
) -> None:
    root = _write_cuad(tmp_path / "cuad", 3)
    csv_file = root / "master_clauses.csv"
    if breakage == "no_csv":
        csv_file.unlink()
    elif breakage == "empty_csv":
        csv_file.write_text("", encoding="utf-8")
    elif breakage == "header_only":
        csv_file.write_text(csv_file.read_text().splitlines()[0] + "\n", encoding="utf-8")
    elif breakage == "unknown_column":
        text = csv_file.read_text()
        csv_file.write_text(text.replace("Governing Law", "Force Majeure"), encoding="utf-8")
    elif breakage == "unmatched":
        next((root / "full_contract_txt").glob("ACME_1_*")).unlink()
    elif breakage == "bad_cell":
        text = csv_file.read_text()
        csv_file.write_text(text.replace("['SUPPLY AGREEMENT NUMBER 0']", "[oops"), "utf-8")
    elif breakage == "no_folder":
        root = tmp_path / "missing"
    with pytest.raises(DataError, match=message) as caught:
        load_cuad(root)
    if breakage in ("unknown_column",):
        assert ":1:" in str(caught.value)
    if breakage in ("unmatched", "bad_cell"):
        assert "master_clauses.csv:" in str(caught.value)


def test_split_is_by_contract_fixed_by_the_seed(tmp_path: Path) -> None:
    contracts = load_cuad(_write_cuad(tmp_path, 10)).contracts
    train, test = split_contracts(contracts, 0.2, seed=7)
    again = split_contracts(list(reversed(contracts)), 0.2, seed=7)
    assert [c.name for c in test] == [c.name for c in again[1]]
    assert len(test) == 2 and not {c.name for c in train} & {c.name for c in test}
    other = {tuple(c.name for c in split_contracts(contracts, 0.2, seed=s)[1]) for s in range(6)}
    assert len(other) > 1


# -- segments and labels -----------------------------------------------------------------------
def test_segments_are_stripped_slices_with_short_pieces_merged_and_long_ones_cut() -> None:
    text = "TITLE OF THE CONTRACT HERE\n\n1. Short.\n  First sentence here is long enough. " + (
        "word " * 300
    )
    spans = segment(text, min_chars=30, max_chars=200)
    pieces = [text[s:e] for s, e in spans]
    assert all(p == p.strip() and p for p in pieces)
    assert pieces[0].startswith("TITLE") and "1. Short." in pieces[0]  # merged forward
    assert max(e - s for s, e in spans) <= 200
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_segment_labels_need_half_of_the_shorter_span() -> None:
    text = "a" * 100
    contract = Contract("c", text, {"X": ("x",)}, {"X": ((10, 20),)})
    labels = segment_labels(contract, [(0, 14), (0, 16), (15, 90), (50, 60)], ["X"])
    assert labels[:, 0].tolist() == [False, True, True, False]


def test_platt_recovers_the_scaling_and_stays_finite_on_separable_data() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20_000)
    y = rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * z - 1)))
    a, b = platt(z, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.08)
    separable = np.r_[np.full(20, 5.0), np.full(5, -5.0)]
    a, b = platt(separable, np.r_[np.ones(20, bool), np.zeros(5, bool)])
    assert 0 < a < 5 and abs(b) < 5


# -- the CUAD metric ---------------------------------------------------------------------------
def test_jaccard_follows_the_reference_normalisation() -> None:
    assert jaccard("Governed by: New York.", "governed by new york") == 1.0
    assert jaccard("a/b c", "a b") == pytest.approx(2 / 3)
    assert jaccard("", "") == 0.0


def test_cuad_metrics_on_a_hand_computed_case() -> None:
    gold_a = "This Agreement shall be governed by the laws of New York."
    gold_b = "Either party may terminate for convenience on notice."
    questions = [
        Question(
            "Governing Law",
            (gold_a, gold_b),
            [(gold_a, 0.85), ("Payment is due in thirty days.", 0.65), (gold_b, 0.45)],
        ),
        Question("Governing Law", (), []),
    ]
    # t >= 0.85: nothing; 0.65 <= t < 0.85: P 1, R 1/2; 0.45 <= t < 0.65: P 1/2, R 1/2;
    # t < 0.45: P 2/3, R 1. Monotone precision: 1 up to recall 1/2, then 2/3.
    result = cuad_metrics(questions, ["Governing Law"])
    row = result["per_category"]["Governing Law"]
    assert row["aupr"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert row["prec_at_80_recall"] == pytest.approx(2 / 3)
    assert result["overall"]["aupr"] == pytest.approx(row["aupr"])


def test_predictions_on_a_question_without_answers_are_false_positives() -> None:
    questions = [
        Question(
            "Insurance",
            ("The Supplier shall maintain insurance.",),
            [("The Supplier shall maintain insurance.", 0.75)],
        ),
        Question("Insurance", (), [("Some other text entirely.", 0.95)]),
    ]
    row = cuad_metrics(questions, ["Insurance"])["per_category"]["Insurance"]
    # Recall reaches 1 only at t < 0.75, where one of two predictions is wrong.
    assert row["prec_at_80_recall"] == pytest.approx(0.5)


def test_parties_match_by_substring_as_in_the_reference() -> None:
    pred = "between Acme Corp, a Delaware corporation, and Beta LLC, a Texas company"
    questions = [Question("Parties", ("Acme Corp", "Beta LLC"), [(pred, 0.5)])]
    row = cuad_metrics(questions, ["Parties", "Insurance"])["per_category"]
    assert row["Parties"]["aupr"] == pytest.approx(1.0)
    assert row["Insurance"]["aupr"] is None  # no gold answers: not scored


# -- training, evaluation and the specialist end to end ----------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clauses")
    data = _write_cuad(root / "cuad", 14)
    code = main(
        [
            "specialists",
            "train",
            "clauses",
            "--format",
            "cuad",
            "--data",
            str(data),
            "--store",
            str(root / "store"),
            "--seed",
            "3",
            "--json",
        ]
    )
    assert code == 0
    return root


def test_train_writes_the_artifact_and_its_model_card(trained: Path) -> None:
    folder = trained / "store" / "clauses"
    assert {p.name for p in folder.iterdir()} == {
        "artifact.json",
        "weights.npz",
        "model_card.json",
        "model_card.md",
    }
    card = json.loads((folder / "model_card.json").read_text())
    assert card["labels"] == CATEGORIES and card["split"]["seed"] == 3
    assert "specialists train clauses --data" in card["command"] and "--seed 3" in card["command"]
    model = load_clause_model(folder)
    assert len(model.split["test"]) == 3 and model.categories == tuple(CATEGORIES)
    markdown = (folder / "model_card.md").read_text()
    assert "seed 3" in markdown and "departs from CUAD's evaluate.py" in markdown


def test_eval_reports_cuad_metrics_writes_the_plot_and_updates_the_card(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(
        [
            "eval",
            "clauses",
            "--format",
            "cuad",
            "--data",
            str(trained / "cuad"),
            "--store",
            str(trained / "store"),
            "--plots",
            str(trained / "plots"),
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["contracts"] == 3 and report["split_seed"] == 3
    assert set(report["per_category"]) == set(CATEGORIES)
    assert report["per_category"]["Governing Law"]["aupr"] > 0.9
    assert (trained / "plots" / "pr_curve.png").stat().st_size > 1000
    card = json.loads((trained / "store" / "clauses" / "model_card.json").read_text())
    assert "test" in card["metrics"] and "Governing Law" in card["per_category"]["test"]


def test_specialist_finds_clauses_with_verbatim_offsets(trained: Path) -> None:
    spec = ClausesSpecialist({"artifact": str(trained / "store" / "clauses")})
    text, _ = _contract(20)
    text = "Preamble.\n" + text
    prediction = spec.predict_batch([ContractInput(text=text)])[0]
    output = prediction.output
    law = output.categories["Governing Law"]
    assert law.present and "Governing Law" in output.found
    assert any("governed by the laws" in span.text for span in law.spans)
    for result in output.categories.values():
        for span in result.spans:
            assert text[span.start : span.end] == span.text
    assert spec.verify(ContractInput(text=text), output) == []
    assert 0.0 <= prediction.confidence <= 1.0
    assert spec.labels == tuple(CATEGORIES)


def test_verify_names_a_span_that_is_not_in_the_source() -> None:
    spec = ClausesSpecialist()  # verification needs no trained model
    text, _ = _contract(21)
    start = text.index("This Agreement shall be governed")
    good = {"start": start, "end": start + 14, "text": "This Agreement", "confidence": 0.9}
    output = ClausesOutput(
        found=["Governing Law", "Parties"],
        categories={
            "Governing Law": CategoryResult(
                present=True,
                confidence=0.9,
                spans=[
                    ClauseSpan(**good),
                    ClauseSpan(**{**good, "start": start + 1, "end": start + 15}),
                    ClauseSpan(**{**good, "end": 10**6}),
                ],
            ),
            "Insurance": CategoryResult(present=False, confidence=0.8, spans=[ClauseSpan(**good)]),
            "Force Majeure": CategoryResult(present=False, confidence=0.8),
        },
    )
    problems = spec.verify(ContractInput(text=text), output)
    assert len(problems) == 5
    assert "not in the source verbatim" in problems[0] and "Governing Law" in problems[0]
    assert "outside the input" in problems[1]
    assert "marked absent but has 1 span" in problems[2]
    assert "unknown category 'Force Majeure'" in problems[3]
    assert "found lists categories not marked present: ['Parties']" in problems[4]
    assert spec.verify_json({"text": text}, output.model_dump(mode="json")) == problems
    assert spec.verify_json({"text": ""}, output.model_dump(mode="json"))[0].startswith(
        "cannot check"
    )


def test_without_an_artifact_the_error_names_the_train_command(tmp_path: Path) -> None:
    spec = ClausesSpecialist({"store": str(tmp_path)})
    assert len(spec.labels) == 41  # the contract is known before anything is trained
    with pytest.raises(ConfigurationError, match="orchestrator specialists train clauses"):
        spec.ensure_loaded()


def test_contract_input_takes_long_documents() -> None:
    assert ContractInput(text="x" * 1_500_000).text
    with pytest.raises(ValueError, match="at most 2000000"):
        ContractInput(text="x" * 2_000_001)


# -- the verify hook in the framework ----------------------------------------------------------
class _QuoteOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    quote: str
    start: int


class _Quoter(Specialist[TextInput, _QuoteOutput]):
    """Quotes the word 'refund' from the input; 'lie' makes it quote a word that is not there."""

    name: ClassVar[str] = "quoter"
    description: ClassVar[str] = "Quotes a word. Input: {text}."
    input_model: ClassVar[type[BaseModel]] = TextInput
    output_model: ClassVar[type[BaseModel]] = _QuoteOutput

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[_QuoteOutput]]:
        out = []
        for item in inputs:
            start = max(0, item.text.find("refund"))
            quote = "invented" if "lie" in item.text else "refund"
            out.append(Prediction(_QuoteOutput(quote=quote, start=start), 0.99))
        return out

    def verify(self, input: TextInput, output: _QuoteOutput) -> list[str]:
        found = input.text[output.start : output.start + len(output.quote)]
        return [] if found == output.quote else [f"quote {output.quote!r} is not in the source"]


GRAPH = """\
version: 1
name: quotes
specialists:
  quoter: {}
policies:
  min_confidence: 0.5
escalation: []
nodes:
  work:
    kind: specialists
    subtasks:
      - {id: q, specialist: quoter}
edges:
  - {from: START, to: work}
"""


def test_the_base_specialist_has_no_checks_of_its_own() -> None:
    assert not Specialist.has_verify() and _Quoter.has_verify()
    assert ClausesSpecialist.has_verify()


def test_clauses_is_a_registered_built_in() -> None:
    assert SpecialistRegistry().get("clauses") is ClausesSpecialist


def test_verify_step_runs_the_specialists_own_checks() -> None:
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(_Quoter)
    spec = GraphSpec.from_text(GRAPH, registry=registry)
    toolset = InProcessToolset({"quoter": _Quoter()})
    tools = {t.name: t for t in asyncio.run(toolset.list_tools())}
    ctx = StepContext(
        spec=spec,
        toolset=toolset,
        planner=LocalPlanner(),
        tools=tools,
        verifiers={"quoter": _Quoter().verify_json},
    )
    good = SpecialistResult(
        subtask_id="q",
        specialist="quoter",
        ok=True,
        input={"text": "a refund please"},
        output={"quote": "refund", "start": 2},
        confidence=0.99,
        latency_ms=1.0,
    )
    assert ctx.checker.verdict(good).passed
    assert ctx.checker.verdict(good).checks["specialist_checks"] is True
    bad = good.model_copy(update={"output": {"quote": "refund", "start": 0}})
    verdict = ctx.checker.verdict(bad)
    assert not verdict.passed and verdict.checks["specialist_checks"] is False
    assert verdict.reasons == ("quote 'refund' is not in the source",)


@pytest.mark.parametrize(("text", "verified"), [("a refund please", True), ("lie", False)])
def test_a_failed_own_check_leaves_the_run_result_unverified(text: str, verified: bool) -> None:
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(_Quoter)
    orc = Orchestrator.from_text(GRAPH, registry=registry, checkpointer="none")
    result = orc.run(text)
    report = result.subtasks[0]
    assert report.verified is verified
    assert result.fields["q.quote"].provenance.verified is verified
    if not verified:
        assert "quote 'invented' is not in the source" in report.reasons
        assert result.status != "ok"


def test_clause_arrays_are_float32(trained: Path) -> None:
    model = load_clause_model(trained / "store" / "clauses")
    assert model.weights.dtype == np.float32 and model.platt.shape == (4, 2)
