from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, settings

from orchestrator.specialists import SpecialistRegistry
from orchestrator.specialists.testing import ScriptedSpecialist
from tests.pg_cluster import PostgresCluster, throwaway_cluster

# Property-based tests stay small in a normal run; `make fuzz` (`pytest -m fuzz
# --hypothesis-profile fuzz`) runs them deeper, FUZZ_EXAMPLES cases per property.
settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "3000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")

REPO = Path(__file__).resolve().parent.parent
GRAPHS = REPO / "graphs"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    # The tests talk to nothing but servers they start themselves on 127.0.0.1.
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"tests may not connect to {host!r}: network access is switched off")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
    yield


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    # The CLI configures logging for the process; later tests start from the defaults.
    framework = logging.getLogger("orchestrator")
    handlers, level, propagate = list(framework.handlers), framework.level, framework.propagate
    yield
    structlog.reset_defaults()
    framework.handlers[:] = handlers
    framework.setLevel(level)
    framework.propagate = propagate


@pytest.fixture
def registry() -> SpecialistRegistry:
    """A registry with only the scripted test specialist (no models load)."""
    reg = SpecialistRegistry(load_entry_points=False)
    reg.register(ScriptedSpecialist)
    return reg


SCRIPTED_GRAPH = """\
version: 1
name: scripted
specialists:
  first:
    uses: scripted
    options:
      answers:
        refund: {label: refund, confidence: 0.95}
        unsure: {label: refund, confidence: 0.2}
      default: {label: other, confidence: 0.9}
      labels: [refund, other]
  second:
    uses: scripted
    options:
      answers:
        "refund": {label: followup, confidence: 0.8}
policies:
  retries: 1
  retry_backoff_s: 0
nodes:
  work:
    kind: specialists
    subtasks:
      - {id: a, specialist: first}
      - id: b
        specialist: second
        depends_on: [a]
        input: {text: "previous said {{ a.label }}"}
  refund_route:
    kind: set
    set: {queue: refunds, seen: "{{ a.label }}"}
  other_route:
    kind: set
    set: {queue: general}
edges:
  - {from: START, to: work}
  - {from: work, to: refund_route, when: "a.label == 'refund' and a.verified"}
  - {from: work, to: other_route}
"""


@pytest.fixture
def scripted_graph_text() -> str:
    return SCRIPTED_GRAPH


@pytest.fixture(scope="session")
def function_call_reader() -> Any:
    """The function_call specialist reading arguments (no generative model), loaded once."""
    from orchestrator.specialists import default_registry

    spec = default_registry().create("function_call", {"filler": "extract"})
    spec.ensure_loaded()
    return spec


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for every test that needs one (started on first use,
    stopped at the end of the session). Missing binaries fail the test with the fix: CI
    installs PostgreSQL, so these tests must run there, never skip."""
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a fresh, empty database of the session's cluster."""
    return postgres_cluster.new_database()
