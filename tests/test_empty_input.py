"""Input with nothing visible in it (whitespace, zero-width spaces, a byte-order mark) is
refused like the empty string: by the request, by the specialists' input, by the CLI."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator import Orchestrator, RunRequest
from orchestrator.cli.main import ExitCode, main
from orchestrator.graph.spec import GraphSpec
from orchestrator.specialists import SpecialistRegistry, TextInput

INVISIBLE = [" ", "\t\n", "\u200b", "\ufeff", "\u00a0\u3000", "\u200b\u200d\u2060 \ufeff", "\u3164"]


@pytest.mark.parametrize("text", INVISIBLE)
@pytest.mark.parametrize("model", [RunRequest, TextInput])
def test_input_without_visible_characters_is_refused(text: str, model: type) -> None:
    with pytest.raises(ValidationError, match="no visible characters") as caught:
        model(text=text)
    assert caught.value.errors()[0]["loc"] == ("text",)


def test_visible_text_with_invisible_characters_is_kept() -> None:
    assert RunRequest(text="refund\u200b please").text == "refund\u200b please"
    assert TextInput(text="\ufeffhello").text == "\ufeffhello"
    with pytest.raises(ValidationError, match="at least 1 character"):
        RunRequest(text="")


def test_sdk_refuses_invisible_input_before_running(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    orc = Orchestrator(
        GraphSpec.from_text(scripted_graph_text, registry=registry),
        registry=registry,
        checkpointer="none",
        inprocess=True,
    )
    with pytest.raises(ValidationError, match=r"U\+200B ZERO WIDTH SPACE"):
        orc.run("\u200b\u200b")


@pytest.mark.parametrize("text", ["", "   ", "\u200b", "\ufeff\u2060"])
def test_cli_refuses_invisible_input_in_one_line(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "support_triage", "--input", text]) == ExitCode.INVALID
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "error: --input is empty or only whitespace and invisible characters: give the text "
        "of the request"
    ]
    assert "Traceback" not in captured.err + captured.out
