"""Backends: where a binding's model runs, found by name like the specialists are."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator import ConfigurationError, GraphFileError, GraphSpec, Orchestrator
from orchestrator.graph.bindings import specialist_for_binding
from orchestrator.specialists import AnySpecialist, SpecialistRegistry
from orchestrator.specialists.backends.base import Backend, LocalBackend
from orchestrator.specialists.backends.endpoint import EndpointConfig
from orchestrator.specialists.backends.openai_compatible import OpenAICompatibleBackend
from orchestrator.specialists.backends.registry import (
    BackendRegistry,
    default_backends,
    register_backend,
)
from orchestrator.specialists.testing import ScriptedOptions, ScriptedSpecialist


class Place(BaseModel):
    """A plugin backend's own configuration: the endpoint fields it reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    base_url: str
    model: str


class OnPlace(ScriptedSpecialist):
    """The scripted specialist, reporting where its model runs."""

    def __init__(self, options: ScriptedOptions, place: Place) -> None:
        super().__init__(options)
        self.place = place

    @property
    def model_id(self) -> str:
        return f"{self.place.model}@{self.place.base_url}"


class PlaceBackend:
    """A backend written outside the package: the model runs at a `Place`."""

    config_model = Place

    def __init__(self) -> None:
        self.attached: list[tuple[str, Place | None]] = []

    def attach(self, specialist: AnySpecialist, config: Place | None) -> AnySpecialist:
        assert isinstance(specialist, ScriptedSpecialist) and config is not None
        self.attached.append((specialist.name, config))
        return OnPlace(specialist.options, config)


GRAPH = """
version: 1
name: placed
specialists:
  first:
    uses: scripted
    backend: {backend}
{endpoint}
nodes:
  work: {{kind: specialists, subtasks: [{{id: a, specialist: first}}]}}
edges:
  - {{from: START, to: work}}
  - {{from: work, to: END}}
"""
ENDPOINT = "    endpoint: {base_url: 'http://rack-7:9000/v1', model: tiny}"


def _backends(backend: object) -> BackendRegistry:
    backends = BackendRegistry(load_entry_points=False)
    backends.register("place", backend)
    return backends


def test_the_built_in_backends_come_through_the_entry_points() -> None:
    backends = BackendRegistry()
    assert {"local", "vllm"} <= set(backends.names())
    assert isinstance(backends.get("local"), LocalBackend)
    vllm = backends.get("vllm")
    assert isinstance(vllm, OpenAICompatibleBackend) and vllm.config_model is EndpointConfig
    assert backends.get("vllm") is vllm  # built once
    assert isinstance(vllm, Backend) and isinstance(PlaceBackend(), Backend)


def test_a_registered_backend_receives_the_endpoint_as_its_own_config(
    registry: SpecialistRegistry,
) -> None:
    backend = PlaceBackend()
    backends = _backends(backend)
    spec = GraphSpec.from_text(
        GRAPH.format(backend="place", endpoint=ENDPOINT), registry=registry, backends=backends
    )
    built = specialist_for_binding(
        registry, "scripted", spec.specialists["first"], backends=backends
    )
    assert built.model_id == "tiny@http://rack-7:9000/v1"
    assert backend.attached == [("scripted", Place(base_url="http://rack-7:9000/v1", model="tiny"))]


def test_a_run_uses_a_backend_registered_in_the_default_registry(
    registry: SpecialistRegistry,
) -> None:
    register_backend("test_place", PlaceBackend, replace=True)
    graph = GRAPH.format(backend="test_place", endpoint=ENDPOINT)
    result = Orchestrator.from_text(graph, registry=registry, checkpointer="none").run("hi")
    assert result.status == "ok", result
    assert result.fields["a.label"].provenance.model == "tiny@http://rack-7:9000/v1"
    assert "test_place" in default_backends().names()


def _problems(text: str, registry: SpecialistRegistry, backends: BackendRegistry) -> str:
    with pytest.raises(GraphFileError) as caught:
        GraphSpec.from_text(text, source="g.yaml", registry=registry, backends=backends)
    return str(caught.value)


def test_an_unknown_backend_is_refused_with_its_line_and_a_suggestion(
    registry: SpecialistRegistry,
) -> None:
    message = _problems(
        GRAPH.format(backend="plase", endpoint=ENDPOINT), registry, _backends(PlaceBackend())
    )
    assert "g.yaml:7:14" in message and "unknown backend 'plase'" in message
    assert "did you mean 'place'?" in message


def test_an_endpoint_must_fit_the_backend(registry: SpecialistRegistry) -> None:
    backends = _backends(PlaceBackend())
    backends.register("local", LocalBackend())
    # The plugin's config has no `mode`: the endpoint is checked against it at load time.
    extra = ENDPOINT.replace("model: tiny", "model: tiny, mode: choice")
    message = _problems(GRAPH.format(backend="place", endpoint=extra), registry, backends)
    assert "invalid endpoint for `backend: place`" in message and "g.yaml:8:" in message
    message = _problems(GRAPH.format(backend="place", endpoint=""), registry, backends)
    assert "`backend: place` needs an `endpoint`" in message
    message = _problems(GRAPH.format(backend="local", endpoint=ENDPOINT), registry, backends)
    assert "`endpoint` does not apply to `backend: local`" in message


@pytest.mark.parametrize("thing", [object(), 42, "vllm"])
def test_registering_what_is_not_a_backend_is_a_configuration_error(thing: Any) -> None:
    with pytest.raises(ConfigurationError, match="is not a backend"):
        BackendRegistry(load_entry_points=False).register("x", thing)


def test_re_registering_a_taken_backend_name_needs_replace() -> None:
    backends = BackendRegistry()
    with pytest.raises(ConfigurationError, match="backend 'vllm' is already registered"):
        backends.register("vllm", PlaceBackend())
    backends.register("vllm", PlaceBackend(), replace=True)
    assert isinstance(backends.get("vllm"), PlaceBackend)
    with pytest.raises(ConfigurationError, match="unknown backend 'gpu'; registered backends"):
        backends.get("gpu")
