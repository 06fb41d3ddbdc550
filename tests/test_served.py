"""`backend: vllm`: the request shapes only vLLM accepts, replayed from recorded responses."""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator import GraphFileError, GraphSpec
from orchestrator._errors import ConfigurationError
from orchestrator.cli.main import ExitCode, main
from orchestrator.graph.spec import ServedEndpointSpec
from orchestrator.specialists import Prediction, Specialist, TextInput
from orchestrator.specialists.backends.generation import ChatMessage, Generated, JSONGenerator
from orchestrator.specialists.backends.openai_compatible import EndpointError, serve_remotely
from orchestrator.specialists.intent import IntentSpecialist
from orchestrator.specialists.sentiment import SentimentSpecialist

RECORDED = json.loads((Path(__file__).parent / "recordings" / "vllm_responses.json").read_text())[
    "exchanges"
]


class Server:
    """Answers with recorded vLLM responses, in order, and keeps every request."""

    def __init__(self, *names: str) -> None:
        self.answers = [RECORDED[name] for name in names]
        self.requests: list[httpx2.Request] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        return httpx2.Response(answer["status"], json=answer["body"])

    @property
    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handler)

    def body(self, index: int = -1) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.requests[index].content)
        return data


def endpoint(**fields: Any) -> ServedEndpointSpec:
    base = {"base_url": "http://gpu-1:8000/v1", "model": "intent-lora", "retries": 1}
    return ServedEndpointSpec.model_validate({**base, **fields})


def test_a_classifier_chooses_a_label_through_structured_outputs() -> None:
    server = Server("choice_billing")
    served = serve_remotely(IntentSpecialist(), endpoint(), transport=server.transport)
    prediction = served.predict_batch([TextInput(text="I was charged twice")])[0]
    assert prediction.output.label == "billing"
    assert prediction.confidence == pytest.approx(math.exp(-0.06))
    assert prediction.tokens == 61
    request = server.requests[0]
    assert str(request.url) == "http://gpu-1:8000/v1/chat/completions"
    body = server.body()
    assert body["model"] == "intent-lora"
    assert body["structured_outputs"] == {"choice": list(IntentSpecialist().labels)}
    assert body["logprobs"] is True and body["temperature"] == 0
    assert body["messages"][-1] == {"role": "user", "content": "I was charged twice"}
    # The contract is the local specialist's; only the model moved.
    assert served.name == "intent" and served.output_model is IntentSpecialist.output_model
    assert served.model_id == "intent-lora@gpu-1:8000"
    assert served.tool_info().labels == IntentSpecialist().labels


def test_a_label_outside_the_label_set_is_an_error_naming_the_cause() -> None:
    server = Server("choice_not_a_label")
    served = serve_remotely(IntentSpecialist(), endpoint(), transport=server.transport)
    with pytest.raises(EndpointError, match="'weather', which is not in the label set"):
        served.predict_batch([TextInput(text="will it rain")])


BINARY = {
    "negative": {"description": "Unhappy."},
    "positive": {"description": "Happy."},
}


def test_classify_endpoint_scores_a_batch_in_one_request() -> None:
    server = Server("classify_two")
    spec = endpoint(model="sentiment-cls", mode="classify")
    sentiment = SentimentSpecialist({"labels": BINARY})
    served = serve_remotely(sentiment, spec, transport=server.transport)
    predictions = served.predict_batch([TextInput(text="great"), TextInput(text="awful")])
    assert [p.output.label for p in predictions] == ["positive", "negative"]
    assert [p.confidence for p in predictions] == [0.97, 0.88]
    assert [s.label for s in predictions[1].output.ranked] == ["negative", "positive"]
    assert str(server.requests[0].url) == "http://gpu-1:8000/classify"
    assert server.body() == {"model": "sentiment-cls", "input": ["great", "awful"]}


def test_classify_with_a_different_number_of_classes_says_which_labels_are_expected() -> None:
    server = Server("classify_three_classes")
    sentiment = SentimentSpecialist({"labels": BINARY})
    spec = endpoint(model="sentiment-cls", mode="classify")
    served = serve_remotely(sentiment, spec, transport=server.transport)
    with pytest.raises(EndpointError, match="3 class probabilities, but 'sentiment' has 2"):
        served.predict_batch([TextInput(text="fine")])


class Mood(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    score: float


class MoodSpecialist(Specialist[TextInput, Mood]):
    """A specialist with no classifier or generator of its own."""

    name: ClassVar[str] = "mood"
    description: ClassVar[str] = "The mood of a text."
    input_model: ClassVar[type[BaseModel]] = TextInput
    output_model: ClassVar[type[BaseModel]] = Mood

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[Mood]]:
        raise AssertionError("the local model must not run")


def test_any_specialist_can_generate_its_output_schema() -> None:
    server = Server("json_sentiment")
    served = serve_remotely(MoodSpecialist(), endpoint(model="general"), transport=server.transport)
    prediction = served.predict_batch([TextInput(text="the worst")])[0]
    assert prediction.output == Mood(label="negative", score=0.9)
    assert 0 < prediction.confidence < 1
    body = server.body()
    assert body["structured_outputs"] == {"json": Mood.model_json_schema()}
    assert json.loads(body["messages"][-1]["content"]) == {"text": "the worst"}


def test_the_portable_response_format_is_sent_to_other_servers() -> None:
    server = Server("json_sentiment")
    spec = endpoint(model="general", structured_outputs="response_format")
    serve_remotely(MoodSpecialist(), spec, transport=server.transport).predict_batch(
        [TextInput(text="the worst")]
    )
    body = server.body()
    assert "structured_outputs" not in body
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == Mood.model_json_schema()


def test_an_answer_cut_at_the_token_limit_is_an_error() -> None:
    server = Server("json_cut_short")
    served = serve_remotely(MoodSpecialist(), endpoint(model="general"), transport=server.transport)
    with pytest.raises(EndpointError, match=r"raise `endpoint\.max_tokens`"):
        served.predict_batch([TextInput(text="meh")])


class EchoGenerator:
    model_id = "local-echo"

    def generate(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int
    ) -> Generated:
        return Generated("{}")


class Caller(Specialist[TextInput, Mood]):
    """A generative specialist: its generator is swapped for the served one."""

    name: ClassVar[str] = "caller"
    description: ClassVar[str] = "Generates."
    input_model: ClassVar[type[BaseModel]] = TextInput
    output_model: ClassVar[type[BaseModel]] = Mood

    def __init__(self) -> None:
        super().__init__()
        self.generator: JSONGenerator = EchoGenerator()

    def use_generator(self, generator: JSONGenerator) -> None:
        self.generator = generator

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[Mood]]:
        schema = {"type": "object", "properties": {"label": {"enum": ["negative", "positive"]}}}
        answer = self.generator.generate(
            [{"role": "user", "content": inputs[0].text}], schema, max_tokens=32
        )
        return [Prediction(Mood.model_validate_json(answer.text), 1.0)]


def test_a_generative_specialist_keeps_its_own_schema_and_prompts() -> None:
    server = Server("json_sentiment")
    caller = Caller()
    served = serve_remotely(caller, endpoint(model="general"), transport=server.transport)
    assert served is caller and caller.generator.model_id == "general@gpu-1:8000"
    assert served.predict_batch([TextInput(text="awful")])[0].output.label == "negative"
    body = server.body()
    assert body["structured_outputs"]["json"]["properties"]["label"]["enum"] == [
        "negative",
        "positive",
    ]
    assert body["max_tokens"] == 32


def test_overload_is_retried_and_a_missing_model_is_explained() -> None:
    server = Server("overloaded", "choice_billing")
    served = serve_remotely(IntentSpecialist(), endpoint(), transport=server.transport)
    assert served.predict_batch([TextInput(text="charged twice")])[0].output.label == "billing"
    assert len(server.requests) == 2

    server = Server("model_not_found")
    served = serve_remotely(IntentSpecialist(), endpoint(), transport=server.transport)
    with pytest.raises(EndpointError, match=r"serve a model named 'intent-lora'.*does not exist"):
        served.predict_batch([TextInput(text="charged twice")])


def test_overload_that_persists_gives_up_after_the_retries() -> None:
    server = Server("overloaded", "overloaded")
    served = serve_remotely(IntentSpecialist(), endpoint(), transport=server.transport)
    with pytest.raises(EndpointError, match="HTTP 503 after 2 attempts: The server is overloaded"):
        served.predict_batch([TextInput(text="charged twice")])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_server_that_is_down_is_a_clear_error() -> None:
    spec = endpoint(base_url=f"http://127.0.0.1:{_closed_port()}/v1", retries=0)
    served = serve_remotely(IntentSpecialist(), spec)
    with pytest.raises(EndpointError, match=r"cannot reach .* is the server running"):
        served.predict_batch([TextInput(text="hello")])


def test_a_missing_api_key_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_KEY_FOR_TEST", raising=False)
    with pytest.raises(ConfigurationError, match="VLLM_KEY_FOR_TEST, which is not set"):
        serve_remotely(IntentSpecialist(), endpoint(api_key_env="VLLM_KEY_FOR_TEST"))


def test_the_key_travels_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_KEY_FOR_TEST", "s3cret")
    server = Server("choice_billing")
    spec = endpoint(api_key_env="VLLM_KEY_FOR_TEST")
    serve_remotely(IntentSpecialist(), spec, transport=server.transport).predict_batch(
        [TextInput(text="charged")]
    )
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"


GRAPH = """
version: 1
name: served
specialists:
  intent:
    backend: vllm
{endpoint}
nodes:
  triage: {{kind: specialists, subtasks: [{{id: intent, specialist: intent}}]}}
edges:
  - {{from: START, to: triage}}
  - {{from: triage, to: END}}
"""


def test_a_vllm_binding_without_an_endpoint_is_refused_with_its_line() -> None:
    with pytest.raises(GraphFileError) as caught:
        GraphSpec.from_text(GRAPH.format(endpoint=""), source="served.yaml")
    message = str(caught.value)
    assert "served.yaml:6:5" in message and "needs an `endpoint`" in message


def test_a_vllm_binding_with_a_bad_url_is_refused() -> None:
    text = GRAPH.format(endpoint="    endpoint: {base_url: gpu-1:8000, model: m}")
    with pytest.raises(GraphFileError, match="must start with http"):
        GraphSpec.from_text(text, source="served.yaml")


def test_serve_command_groups_specialists_by_model_and_splits_the_gpu(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        [
            "specialists",
            "serve-command",
            "intent",
            "sentiment",
            "--gpu",
            "--lora",
            "intent=/models/intent-adapter",
            "--api-key-env",
            "VLLM_API_KEY",
            "--json",
        ]
    )
    assert code == 0
    plan = json.loads(capsys.readouterr().out)
    first, second = plan["servers"]
    assert first["argv"][:3] == ["vllm", "serve", "Qwen/Qwen3-1.7B"]
    assert "--structured-outputs-config.backend" in first["argv"]
    assert first["argv"][first["argv"].index("--lora-modules") + 1] == (
        "intent=/models/intent-adapter"
    )
    assert second["argv"][second["argv"].index("--runner") + 1] == "pooling"
    assert first["argv"][first["argv"].index("--gpu-memory-utilization") + 1] == "0.45"
    assert (first["port"], second["port"]) == (8000, 8001)
    assert "--api-key ${VLLM_API_KEY}" in first["command"]
    assert "classes negative, neutral, positive" in second["reasons"]["sentiment"]
    # The bindings it prints load as a graph file's specialists.
    bindings = plan["graph"]["specialists"]
    assert bindings["sentiment"]["endpoint"]["mode"] == "classify"
    graph = GraphSpec.from_dict(
        {
            "version": 1,
            "name": "gpu",
            "specialists": bindings,
            "nodes": {
                "triage": {
                    "kind": "specialists",
                    "subtasks": [{"id": "intent", "specialist": "intent"}],
                }
            },
            "edges": [{"from": "START", "to": "triage"}, {"from": "triage", "to": "END"}],
        }
    )
    endpoint_spec = graph.specialists["intent"].endpoint
    assert endpoint_spec is not None and endpoint_spec.base_url == "http://127.0.0.1:8000/v1"


def test_serve_command_without_gpu_prints_the_cpu_mcp_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["specialists", "serve-command", "intent", "--port", "9100"]) == 0
    text = capsys.readouterr().out
    assert "orchestrator serve intent --transport http --port 9100" in text
    assert "url: http://127.0.0.1:9100/mcp" in text


def test_serve_command_refuses_what_it_cannot_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["specialists", "serve-command", "intnt", "--gpu"]) == ExitCode.INVALID
    assert "did you mean 'intent'" in capsys.readouterr().err
    assert main(["specialists", "serve-command", "intent", "--lora", "intent"]) == (
        ExitCode.INVALID
    )
    assert main(["specialists", "serve-command", "intent", "--gpu", "--lora", "x=y"]) == (
        ExitCode.INVALID
    )
    assert "not being served: x" in capsys.readouterr().err


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


def test_function_call_fills_arguments_on_the_server_under_its_schema() -> None:
    from orchestrator.specialists.function_call.specialist import (
        FunctionCallInput,
        FunctionCallSpecialist,
    )

    server = Server("json_weather_call")
    specialist = FunctionCallSpecialist()
    served = serve_remotely(specialist, endpoint(model="function_call"), transport=server.transport)
    weather = WEATHER_TOOL["function"]
    item = FunctionCallInput(request="What's the weather in Paris in celsius?", functions=[weather])
    (prediction,) = served.predict_batch([item])
    (call,) = prediction.output.calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris", "unit": "celsius"})
    assert served.verify(item, prediction.output) == []
    # The constraints travel as JSON Schema: the city can only be a span of the request.
    schema = server.body()["structured_outputs"]["json"]
    city = schema["items"]["properties"]["city"]["enum"]
    assert "Paris" in city and all(span in item.request for span in city)
    assert "function_call@gpu-1:8000" in served.model_id
    served.close()


def _native(*answers: str) -> tuple[Server, Any]:
    from orchestrator.specialists.function_call import FunctionCallSpecialist

    server = Server(*answers)
    served = serve_remotely(
        FunctionCallSpecialist(),
        endpoint(model="function_call", mode="tools"),
        transport=server.transport,
    )
    return server, served


def test_native_tool_calling_sends_the_tools_and_reads_every_call_once() -> None:
    from orchestrator.specialists.function_call import ChatTurn, FunctionCallInput

    server, served = _native("tools_two_cities_repeated")
    item = FunctionCallInput(
        request=[
            ChatTurn(role="system", content="Answer briefly."),
            ChatTurn(role="user", content="What's the weather in Paris, in celsius?"),
            ChatTurn(role="assistant", content="12 degrees and cloudy."),
            ChatTurn(role="user", content="And in Berlin?"),
        ],
        functions=[WEATHER_TOOL],
        now="2026-12-07T09:30:00",
    )
    (prediction,) = served.predict_batch([item])
    calls = [(c.name, c.arguments) for c in prediction.output.calls]
    # The model called Paris twice; a repeated call is never meant.
    assert calls == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_weather", {"city": "Berlin", "unit": "celsius"}),
    ]
    assert not prediction.output.no_call and served.verify(item, prediction.output) == []
    # The confidence is the model's own: its mean token probability.
    logprobs = [
        t["logprob"]
        for t in RECORDED["tools_two_cities_repeated"]["body"]["choices"][0]["logprobs"]["content"]
    ]
    assert prediction.confidence == pytest.approx(math.exp(sum(logprobs) / len(logprobs)))
    assert prediction.tokens == 212 + 64
    body = server.body()
    # The functions travel as OpenAI tools, their parameters as the JSON Schema verification
    # checks (unknown arguments refused).
    (tool,) = body["tools"]
    parameters = {**WEATHER_TOOL["function"]["parameters"], "additionalProperties": False}
    assert tool == {
        "type": "function",
        "function": {**WEATHER_TOOL["function"], "parameters": parameters},
    }
    assert body["tool_choice"] == "auto"
    assert "structured_outputs" not in body and "response_format" not in body
    # The whole conversation, with one system message: ours, the date, then the user's own.
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "Monday 2026-12-07 09:30" in messages[0]["content"]
    assert messages[0]["content"].endswith("Answer briefly.")
    assert messages[-1] == {"role": "user", "content": "And in Berlin?"}
    # Native calling has no fitted threshold: the binding's min_confidence decides.
    assert served.acceptance_threshold is None and served.tool_info().threshold is None
    assert served.model_id == "function_call:function_call@gpu-1:8000+tools"
    served.close()


def test_native_tool_calling_keeps_the_models_own_no_call_decision() -> None:
    from orchestrator.specialists.function_call import FunctionCallInput

    server, served = _native("tools_no_call")
    # No relevance gate stands in front of the model: it is asked, and it declines.
    item = FunctionCallInput(request="Tell me a joke", functions=[WEATHER_TOOL])
    (prediction,) = served.predict_batch([item])
    assert prediction.output.calls == [] and prediction.output.no_call
    assert prediction.output.reason == "None of the functions can tell a joke."
    assert prediction.confidence == pytest.approx(math.exp(-0.2))
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("tools_arguments_not_json", "missing required argument 'city'"),
        ("tools_city_not_in_request", "'Lyon'"),
    ],
)
def test_a_native_call_that_cannot_be_trusted_has_confidence_zero(
    answer: str, problem: str
) -> None:
    from orchestrator.specialists.function_call import FunctionCallInput

    _, served = _native(answer)
    item = FunctionCallInput(request="What's the weather in Paris?", functions=[WEATHER_TOOL])
    (prediction,) = served.predict_batch([item])
    assert prediction.confidence == 0.0
    problems = served.verify(item, prediction.output)
    assert problems and any(problem in p for p in problems), problems


def test_tools_mode_on_a_specialist_that_calls_no_functions_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="does not call functions"):
        serve_remotely(IntentSpecialist(), endpoint(mode="tools"))


def test_serve_command_hosts_function_call_with_native_tool_calling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["specialists", "serve-command", "function_call", "--gpu", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (server,) = plan["servers"]
    argv = server["argv"]
    assert "--enable-auto-tool-choice" in argv
    assert argv[argv.index("--tool-call-parser") + 1] == "hermes"
    assert plan["graph"]["specialists"]["function_call"]["endpoint"]["mode"] == "tools"
