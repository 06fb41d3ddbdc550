"""`orchestrator eval-cascade`: thresholds vs escalation, without and with the frontier."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from orchestrator.agents._frontier import AnthropicFrontier
from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.cli.main import main
from orchestrator.graph.spec import FrontierSpec
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.evaluation.cascade import evaluate_cascade, plot_cascade
from orchestrator.specialists.evaluation.datasets import Split

from .test_training import trained  # noqa: F401 - the module-scoped trained artifact

RECORDINGS = Path(__file__).parent / "recordings"

TEST_ROWS = [
    ("will it rain in lisbon tomorrow", "weather"),
    ("book a flight to nairobi", "flights"),
    ("play some music from havana", "music"),
    ("hum a tune about the sea", "music"),
    ("what is the capital of mongolia", "oos"),
]


def _split() -> Split:
    return Split([t for t, _ in TEST_ROWS], [label for _, label in TEST_ROWS])


def test_cascade_without_a_key_reports_the_accepted_part_only(
    trained: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    artifact = load_artifact("demo", trained / "store")
    report = evaluate_cascade(
        artifact,
        _split(),
        dataset="demo",
        split_name="test",
        thresholds=[0.0, 0.5, 0.99],
        cache_dir=None,
    )
    first = report.points[0]
    assert first.threshold == 0.0 and first.escalated_share == 0.0 and first.accepted == 4
    # accuracy counts in-scope items only (CLINC150's convention); 4 of the 5 are in scope
    assert report.scored_items == 4
    shares = [p.escalated_share for p in report.points]
    assert shares == sorted(shares)
    assert report.frontier["reached"] is False and "not answered" in report.frontier["note"]
    png = plot_cascade(report, tmp_path / "cascade.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cascade_with_the_frontier_answers_escalated_items(trained: Path) -> None:  # noqa: F811
    artifact = load_artifact("demo", trained / "store")
    exchanges = json.loads((RECORDINGS / "anthropic_cascade_answers.json").read_text())
    sent: list[dict[str, object]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        exchange = exchanges["exchanges"][len(sent) - 1]
        return httpx2.Response(
            exchange["status"], headers=exchange["headers"], json=exchange["body"]
        )

    model = AnthropicFrontier(
        FrontierSpec(),
        api_key="sk-ant-test",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
    )
    # everything below the artifact's threshold goes to the frontier; force a high one
    strict = type(artifact)(**{**vars(artifact), "threshold": 0.999})
    report = evaluate_cascade(
        strict,
        _split(),
        dataset="demo",
        split_name="test",
        answerer=FrontierAnswerer(model),
        cache_dir=None,
    )
    frontier = report.frontier
    assert frontier["reached"] is True and frontier["answered"] == len(sent) > 0
    assert frontier["cost_usd"] == pytest.approx(len(sent) * (180 * 3 + 12 * 15) / 1e6)
    assert sent[0]["tool_choice"] == {"type": "tool", "name": "answer"}
    enum = sent[0]["tools"][-1]["input_schema"]["properties"]["label"]["enum"]  # type: ignore[index]
    assert set(enum) == set(artifact.labels)


def test_eval_cascade_cli(
    trained: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train", "test"):
        (data / f"{name}.jsonl").write_text(
            "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in TEST_ROWS)
        )
    artifact = str(trained / "store" / "demo")
    code = main(
        [
            "eval-cascade",
            artifact,
            "--data",
            str(data),
            "--format",
            "jsonl",
            "--json",
            "--plot",
            str(tmp_path / "c.png"),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 5 and report["frontier"]["reached"] is False
    assert (tmp_path / "c.png").is_file()
    assert main(["eval-cascade", artifact, "--data", str(data), "--format", "jsonl"]) == 0
    table = capsys.readouterr().out
    assert "escalated" in table and "the frontier model was not reached" in table
