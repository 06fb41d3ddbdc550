"""One exception tree: the caller's mistakes apart from run failures, each with its context."""

from __future__ import annotations

import io

import pytest

from orchestrator import (
    ConfigurationError,
    GraphFileError,
    GraphSpec,
    InvalidArgumentError,
    OrchestratorError,
    RunError,
    SpecialistError,
    ToolTimeoutError,
    ToolTransportError,
    UnknownSpecialistError,
    UsageError,
    configure_logging,
)
from orchestrator.agents._frontier import FrontierError
from orchestrator.graph.expressions import ExpressionError, parse_expression
from orchestrator.graph.positions import YamlSyntaxError, load_yaml
from orchestrator.specialists import SpecialistRegistry


@pytest.mark.parametrize(
    "usage",
    [
        ConfigurationError,
        GraphFileError,
        InvalidArgumentError,
        UnknownSpecialistError,
        ExpressionError,
        YamlSyntaxError,
    ],
)
def test_every_mistake_of_the_caller_is_a_usage_error(usage: type[Exception]) -> None:
    assert issubclass(usage, UsageError) and issubclass(usage, OrchestratorError)
    assert not issubclass(usage, RunError)


@pytest.mark.parametrize(
    "failure", [SpecialistError, ToolTransportError, ToolTimeoutError, FrontierError]
)
def test_every_failure_of_a_run_is_a_run_error(failure: type[Exception]) -> None:
    assert issubclass(failure, RunError) and issubclass(failure, OrchestratorError)
    assert not issubclass(failure, UsageError)


def test_configuration_error_is_the_earlier_name_of_usage_error() -> None:
    assert ConfigurationError is UsageError
    with pytest.raises(ConfigurationError):
        raise InvalidArgumentError("x")


def test_value_errors_raised_on_purpose_stay_value_errors_in_the_tree() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown log level 'loud'") as info:
        configure_logging(level="loud", stream=io.StringIO())
    assert isinstance(info.value, ValueError)
    with pytest.raises(ExpressionError) as expression:
        parse_expression("a ==")
    assert isinstance(expression.value, ValueError) and expression.value.column >= 0


def test_graph_problems_carry_file_and_line(registry: SpecialistRegistry) -> None:
    with pytest.raises(YamlSyntaxError) as syntax:
        load_yaml("name: x\nnodes: [unclosed\n")
    assert syntax.value.line is not None and syntax.value.line >= 2
    text = "version: 1\nname: g\nspecialists:\n  a: {uses: scripted}\nnodes: {}\nedges: []\n"
    with pytest.raises(GraphFileError) as bad:
        GraphSpec.from_text(text, source="g.yaml", registry=registry)
    assert bad.value.file == "g.yaml"
    assert bad.value.line == bad.value.issues[0].line == 5


def test_run_errors_carry_their_subtask_and_tool() -> None:
    error = ToolTimeoutError("slow", subtask_id="a", tool="intent")
    assert (error.subtask_id, error.tool, error.kind) == ("a", "intent", "ToolTimeoutError")
    plain = ToolTransportError("down")
    assert (plain.subtask_id, plain.tool) == (None, None)
    frontier = FrontierError("no answer", subtask_id="b")
    assert (frontier.subtask_id, frontier.calls) == ("b", ())


def test_a_wrapped_specialist_exception_keeps_its_kind_and_message() -> None:
    error = SpecialistError.wrapping(KeyError("label"), tool="intent")
    assert (error.tool, error.kind, str(error)) == ("intent", "KeyError", "'label'")
    assert SpecialistError.wrapping(ZeroDivisionError(), tool="t").args == ("ZeroDivisionError",)
