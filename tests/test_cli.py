"""The command line, through its testable ``main(argv) -> int``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator import __version__
from orchestrator._contracts import LedgerEntry, RunLedger
from orchestrator.cli.main import ExitCode, main
from orchestrator.cli.run import render_ledger

from .conftest import GRAPHS, SCRIPTED_GRAPH
from .processes import running_with

SNAPSHOTS = Path(__file__).parent / "snapshots"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"orchestrator {__version__}"


def test_graph_show_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "show", str(GRAPHS / "support_triage.yaml")]) == 0
    drawing = capsys.readouterr().out
    expected = (SNAPSHOTS / "support_triage.mmd").read_text()
    assert drawing == expected, "update tests/snapshots/support_triage.mmd if the change is wanted"


def test_graph_show_compiled_draws_the_langgraph_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "show", "support_triage", "--compiled"]) == 0
    drawing = capsys.readouterr().out
    for node in ("triage.call", "triage.verify", "triage.merge", "urgent", "review"):
        assert node in drawing


def test_graph_schema_matches_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(
        (GRAPHS / "graph.schema.json").read_text()
    )


def test_validate_ok_and_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((GRAPHS / "support_triage.yaml").read_text().replace("to: urgent", "to: urgnt"))
    code = main(["graph", "validate", "support_triage", str(bad)])
    captured = capsys.readouterr()
    assert code == ExitCode.INVALID
    assert "ok support_triage" in captured.out
    assert "edge to nowhere: no node named 'urgnt'" in captured.err
    assert "did you mean 'urgent'?" in captured.err
    assert f"{bad}:" in captured.err


def test_validate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nspecialists: {}\nnodes: {}\nedges: []\nextra: 1\n")
    assert main(["graph", "validate", "--json", str(bad)]) == ExitCode.INVALID
    (report,) = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    unknown = next(i for i in report["issues"] if "unknown key" in i["message"])
    assert (unknown["line"], unknown["column"]) == (5, 1)


def test_run_with_an_invalid_graph_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [\n")
    assert main(["run", str(bad), "--input", "hi"]) == ExitCode.INVALID
    assert "invalid YAML" in capsys.readouterr().err


def test_run_needs_an_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "support_triage"]) == ExitCode.INVALID
    assert "give --input TEXT" in capsys.readouterr().err


def test_run_unknown_graph_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "support_triag", "--input", "x"]) == ExitCode.INVALID
    error = capsys.readouterr().err
    assert "did you mean 'support_triage'?" in error and "support_triage" in error


def test_run_input_file_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "support_triage", "--input", "@/nonexistent/file.txt"]) == ExitCode.INVALID
    assert "cannot read /nonexistent/file.txt" in capsys.readouterr().err


def test_bad_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--frobnicate"]) == ExitCode.USAGE


@pytest.mark.slow
def test_run_support_triage_json_with_real_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = tmp_path / "message.txt"
    message.write_text("I forgot my password and now my account is locked. This is so frustrating!")
    code = main(
        [
            "run",
            "support_triage",
            "--input",
            f"@{message}",
            "--json",
            "--state-dir",
            str(tmp_path / "state"),
            "--thread",
            "cli-1",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["thread_id"] == "cli-1"
    assert result["fields"]["intent.label"]["value"] == "account_access"
    assert result["fields"]["sentiment.label"]["value"] == "negative"
    assert result["fields"]["priority"]["value"] == "high"
    provenance = result["fields"]["intent.label"]["provenance"]
    assert provenance["model"].startswith("intent:fewshot-head/")
    assert 0 < provenance["confidence"] <= 1
    assert {s["id"] for s in result["subtasks"]} == {"intent", "sentiment"}
    assert all(s["latency_ms"] > 0 and s["tokens"] > 0 for s in result["subtasks"])
    assert (tmp_path / "state" / "checkpoints.sqlite").is_file()

    # Asking the same thread again returns the stored result; the table form is for people.
    assert (
        main(["run", "support_triage", "--thread", "cli-1", "--state-dir", str(tmp_path / "state")])
        == 0
    )
    table = capsys.readouterr().out
    assert "account_access" in table and "Specialist calls" in table and "cli-1" in table


def test_mcp_config_prints_the_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "config", "claude-desktop", "intent", "sentiment"]) == 0
    config = json.loads(capsys.readouterr().out)
    entry = config["mcpServers"]["orchestrator"]
    assert entry["command"] == sys.executable
    assert entry["args"] == ["-m", "orchestrator", "serve", "intent", "sentiment"]


def test_mcp_config_merges_and_keeps_other_servers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "claude" / "claude_desktop_config.json"
    config_file.parent.mkdir()
    config_file.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}))
    assert (
        main(
            [
                "mcp",
                "config",
                "claude-desktop",
                "--name",
                "specialists",
                "--merge",
                str(config_file),
            ]
        )
        == 0
    )
    merged = json.loads(config_file.read_text())
    assert merged["theme"] == "dark"
    assert merged["mcpServers"]["other"] == {"command": "x"}
    assert merged["mcpServers"]["specialists"]["args"][:3] == ["-m", "orchestrator", "serve"]
    assert "added mcpServers.specialists" in capsys.readouterr().out


def test_mcp_config_refuses_a_broken_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "config.json"
    broken.write_text('{"mcpServers": {,}')
    assert main(["mcp", "config", "claude-desktop", "--merge", str(broken)]) == ExitCode.INVALID
    assert f"{broken}:1:" in capsys.readouterr().err
    assert broken.read_text() == '{"mcpServers": {,}'  # untouched


def test_mcp_config_unknown_client_and_specialist(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mcp", "config", "vscode"]) == ExitCode.INVALID
    assert main(["mcp", "config", "claude-desktop", "sentimnt"]) == ExitCode.INVALID
    assert "did you mean 'sentiment'?" in capsys.readouterr().err


def test_serve_rejects_unknown_specialists_and_transports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "intnt"]) == ExitCode.INVALID
    assert "did you mean 'intent'?" in capsys.readouterr().err
    assert main(["serve", "--transport", "carrier-pigeon"]) == ExitCode.INVALID
    assert main(["serve", "--transport", "http", "--token-env", "SURELY_UNSET_VARIABLE"]) == 3
    assert "SURELY_UNSET_VARIABLE" in capsys.readouterr().err


HUMAN_GRAPH = """\
name: reviewed
escalation: [{kind: human, note: check the label}]
specialists:
  first:
    uses: scripted
    min_confidence: 0.6
    options:
      answers: {unsure: {label: other, confidence: 0.3}}
      labels: [refund, other]
nodes:
  work:
    kind: specialists
    subtasks: [{id: a, specialist: first}]
edges:
  - {from: START, to: work}
"""


@pytest.fixture
def scripted_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.specialists import SpecialistRegistry, _registry
    from orchestrator.specialists.testing import ScriptedSpecialist

    registry = SpecialistRegistry()
    registry.register(ScriptedSpecialist)
    monkeypatch.setattr(_registry, "_default", registry)


@pytest.mark.usefixtures("scripted_default_registry")
def test_run_pauses_for_review_and_resume_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = tmp_path / "reviewed.yaml"
    graph.write_text(HUMAN_GRAPH)
    state = str(tmp_path / "state")
    assert (
        main(["run", str(graph), "-i", "I am unsure", "--thread", "t1", "--state-dir", state]) == 0
    )
    shown = capsys.readouterr()
    assert "awaiting_human" in shown.out and "orchestrator resume " in shown.out
    assert "--thread t1 --approve" in shown.out
    assert "Cost ledger" in shown.out
    # a wrong label is refused before the run goes on
    bad = [
        "resume",
        str(graph),
        "--thread",
        "t1",
        "--state-dir",
        state,
        "--answer",
        '{"label": "bogus", "text": "x"}',
    ]
    assert main(bad) == ExitCode.INVALID
    assert "not one of: refund, other" in capsys.readouterr().err
    good = [
        "resume",
        str(graph),
        "--thread",
        "t1",
        "--state-dir",
        state,
        "--json",
        "--answer",
        '{"label": "refund", "text": "I am unsure"}',
    ]
    assert main(good) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok"
    assert result["fields"]["a.label"]["value"] == "refund"
    assert result["fields"]["a.label"]["provenance"]["source"] == "human"
    assert result["ledger"]["specialist_calls"] == 1


@pytest.mark.usefixtures("scripted_default_registry")
def test_resume_needs_a_paused_thread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph = tmp_path / "reviewed.yaml"
    graph.write_text(HUMAN_GRAPH)
    args = ["resume", str(graph), "--thread", "nope", "--state-dir", str(tmp_path), "--approve"]
    assert main(args) == ExitCode.INVALID
    assert "no run to resume" in capsys.readouterr().err
    assert main([*args, "--reject"]) == ExitCode.INVALID


def test_graph_list_and_specialists_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "list"]) == 0
    assert "support_triage" in capsys.readouterr().out
    assert main(["specialists", "list", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert {"intent", "sentiment"} <= set(listed)
    assert listed["intent"]["input"] == ["text"] and "label" in listed["intent"]["output"]


def test_serve_graph_picks_the_graphs_bindings_with_their_options(tmp_path: Path) -> None:
    from orchestrator.cli.serve import _served_specialists

    graph = tmp_path / "g.yaml"
    graph.write_text(
        "name: g\nspecialists:\n  mood: {uses: sentiment, options: {top_k: 1}}\n"
        "nodes:\n  n: {kind: specialists, subtasks: [{id: m, specialist: mood}]}\n"
        "edges:\n  - {from: START, to: n}\n"
    )
    served = _served_specialists([], str(graph))
    assert list(served) == ["mood"]
    assert served["mood"].name == "sentiment" and served["mood"].options.top_k == 1  # type: ignore[attr-defined]


@pytest.mark.usefixtures("scripted_default_registry")
def test_run_prices_flag_uses_the_given_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = tmp_path / "reviewed.yaml"
    graph.write_text(HUMAN_GRAPH)
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "default_frontier: claude-sonnet-5\nmodels:\n"
        "  claude-sonnet-5: {input: 3, output: 15}\nlocal: {cpu_core_hour: 3600000}\n"
    )
    args = ["run", str(graph), "-i", "refund", "--checkpointer", "none", "--json"]
    assert main([*args, "--prices", str(prices)]) == 0
    ledger = json.loads(capsys.readouterr().out)["ledger"]
    (entry,) = ledger["entries"]
    # a CPU hour priced at 3,600,000 dollars: one dollar per millisecond of model time
    assert entry["cost_usd"] == pytest.approx(entry["compute_ms"])
    assert ledger["price_table"] == str(prices)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: {}\n")
    assert main([*args, "--prices", str(bad)]) == ExitCode.INVALID
    assert f"price table {bad} is invalid" in capsys.readouterr().err


def test_serving_everything_leaves_out_what_cannot_load_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from orchestrator.cli.serve import _served_specialists

    monkeypatch.chdir(tmp_path)  # an empty artifact store: clauses has no trained model here
    served = _served_specialists([], None)
    assert {"intent", "sentiment"} <= set(served) and "clauses" not in served
    assert "not serving clauses" in capsys.readouterr().err
    for specialist in served.values():
        specialist.close()


def _ledger(**changes: object) -> RunLedger:
    fields: dict[str, object] = {
        "entries": (),
        "total_usd": 0.0,
        "frontier_usd": 0.0,
        "specialist_usd": 0.0,
        "frontier_share": 0.0,
        "frontier_calls": 0,
        "specialist_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "all_frontier_usd": 0.0,
        "all_frontier_basis": "no frontier answer in this run",
        "frontier_model": "claude-sonnet-5",
        "price_table": "shipped",
    }
    return RunLedger.model_validate({**fields, **changes})


def test_the_cost_line_of_a_run_that_spent_nothing_has_no_ratio() -> None:
    console = Console(record=True, width=200, file=io.StringIO())
    render_ledger(_ledger(), console)
    assert console.export_text().strip() == "cost    $0: no model was called"

    entry = LedgerEntry.model_validate(
        {"role": "specialist", "kind": "specialist", "subtask_id": "s", "model": "mcp:x/y"}
        | {"cost_usd": 0.0, "priced": True}
    )
    console = Console(record=True, width=200, file=io.StringIO())
    render_ledger(_ledger(entries=(entry,), all_frontier_usd=0.0017), console)
    text = console.export_text()
    assert "about $0.0017 - no frontier answer" in text
    assert "inf" not in text


THIRD_PARTY_GRAPH = """\
name: calc
servers:
  calculator: {{command: "{python}", args: ["{server}"]}}
specialists:
  loud: {{via: calculator, tool: shout}}
nodes:
  work:
    kind: specialists
    subtasks:
      - {{id: s, specialist: loud, input: {{text: "{{{{ request.text }}}}"}}}}
edges:
  - {{from: START, to: work}}
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the server")
def test_run_on_a_third_party_tool_prints_its_result_and_stops_its_server(
    tmp_path: Path,
) -> None:
    import shutil
    import subprocess

    server = tmp_path / "calculator_server.py"
    shutil.copy(Path(__file__).parent / "servers" / "third_party_server.py", server)
    graph = tmp_path / "calc.yaml"
    graph.write_text(THIRD_PARTY_GRAPH.format(python=sys.executable, server=server))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator",
            "run",
            str(graph),
            "--input",
            "hello",
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "HELLO" in done.stdout and "Traceback" not in done.stderr
    assert running_with(server) == []
@pytest.mark.usefixtures("scripted_default_registry")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["run", "GRAPH", "--input", "caf\udce9"],
            "error: --input: the value is not valid UTF-8 (byte 0xe9 at offset 3); pass UTF-8 "
            "text, or convert the file and give it as @FILE",
        ),
        (
            ["run", "GRAPH", "--input", "@latin1.txt"],
            "error: --input @latin1.txt: latin1.txt is not UTF-8 text (byte 0xe9 at offset 3); "
            "convert it first, e.g. `iconv -f latin1 -t utf-8 latin1.txt`",
        ),
        (
            ["serve", "--max-input-chars", "0"],
            "error: --max-input-chars 0: give a whole number of at least 1",
        ),
        (
            ["serve", "--max-batch", "-5"],
            "error: --max-batch -5: give a whole number of at least 1",
        ),
        (
            ["graph", "validate", "caf\udce9.yaml"],
            "error: argument 3 is not valid UTF-8 (byte 0xe9 at offset 3); pass UTF-8 text, or "
            "convert the file and give it as @FILE",
        ),
        (
            ["serve", "--port", "99999"],
            "error: --port 99999: give a port from 1 to 65535 (0 picks a free one)",
        ),
    ],
)
def test_bad_arguments_are_one_line_with_exit_3(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    (tmp_path / "graph.yaml").write_text(SCRIPTED_GRAPH)
    argv = [str(tmp_path / "graph.yaml") if a == "GRAPH" else a for a in argv]
    assert main(argv) == ExitCode.INVALID
    assert capsys.readouterr().err.strip() == expected


@pytest.mark.usefixtures("scripted_default_registry")
def test_an_input_over_the_specialists_limit_is_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "graph.yaml").write_text(SCRIPTED_GRAPH)
    argv = ["run", str(tmp_path / "graph.yaml"), "--checkpointer", "none", "--json"]
    assert main([*argv, "--input", "x" * 100_001]) == ExitCode.RUN_FAILED
    result = json.loads(capsys.readouterr().out)
    (error,) = [s["error"] for s in result["subtasks"] if s["id"] == "a"]
    assert error == (
        "invalid arguments for 'first': text: String should have at most 100000 characters "
        "(it has 100,001)"
    )


def test_a_path_the_system_refuses_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # A file name over 255 bytes: Path.exists() raises instead of answering False.
    assert main(["graph", "validate", "x" * 300]) == ExitCode.INVALID
    assert capsys.readouterr().err.strip() == (
        f"error: cannot use '{'x' * 77}...': File name too long"
    )
