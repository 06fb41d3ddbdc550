"""Loading and checking graph files, with line and column for every problem."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from difflib import get_close_matches
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from orchestrator._errors import (
    ConfigurationError,
    GraphFileError,
    GraphIssue,
    UnknownSpecialistError,
)
from orchestrator.graph.bindings import backend_config
from orchestrator.graph.expressions import (
    Expression,
    ExpressionError,
    is_template,
    parse_expression,
    parse_template,
)
from orchestrator.graph.model import (
    END,
    START,
    ComposeNodeSpec,
    EdgeSpec,
    FrontierSpec,
    GraphModel,
    MCPServerSpec,
    Policies,
    SetNodeSpec,
    SpecialistBinding,
    SpecialistsNodeSpec,
    SubtaskSpec,
)
from orchestrator.graph.positions import LoadedYaml, YamlSyntaxError, load_yaml
from orchestrator.specialists._registry import SpecialistRegistry, default_registry
from orchestrator.specialists.backends.registry import BackendRegistry, default_backends

__all__ = ["load_graph_data", "load_graph_file", "load_graph_text"]

Loc = tuple[str | int, ...]
#: The class a file loads into (GraphSpec, which adds the loading entry points).
G = TypeVar("G", bound=GraphModel)
# Attributes every result offers to conditions, beside the specialist's own output keys.
RESULT_ATTRIBUTES = ("confidence", "verified", "ok", "model", "output", "error")
ROOT_NAMES = ("request", "fields")
#: Largest graph file read, in characters (about 30,000 nodes): YAML is read in pure Python
#: at about 1 s per 100,000 characters, so a bigger file is a mistake rather than a graph.
MAX_GRAPH_CHARS = 2_000_000


def load_graph_file(
    into: type[G],
    path: Path,
    *,
    registry: SpecialistRegistry | None = None,
    backends: BackendRegistry | None = None,
) -> G:
    try:
        if path.stat().st_size > 4 * MAX_GRAPH_CHARS:  # more bytes than any allowed text
            raise GraphFileError([_too_large(path.stat().st_size, "bytes")], path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GraphFileError(
            [GraphIssue("file not found", hint="check the path, or run `orchestrator graph list`")],
            path,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GraphFileError([GraphIssue(f"cannot read the file: {exc}")], path) from None
    return load_graph_text(into, text, source=str(path), registry=registry, backends=backends)


def load_graph_text(
    into: type[G],
    text: str,
    *,
    source: str | None = None,
    registry: SpecialistRegistry | None = None,
    backends: BackendRegistry | None = None,
) -> G:
    if len(text) > MAX_GRAPH_CHARS:
        raise GraphFileError([_too_large(len(text), "characters")], source)
    try:
        loaded = load_yaml(text)
    except YamlSyntaxError as exc:
        pos = exc.position
        raise GraphFileError(
            [
                GraphIssue(
                    f"invalid YAML: {exc.message}",
                    line=pos.line if pos else None,
                    column=pos.column if pos else None,
                )
            ],
            source,
        ) from None
    return _load(into, loaded.data, loaded, source, registry, backends, text)


def _too_large(size: int, unit: str) -> GraphIssue:
    return GraphIssue(
        f"the file has {size:,} {unit}; graph files may hold at most "
        f"{MAX_GRAPH_CHARS:,} characters",
        hint="split it into several graphs",
    )


def load_graph_data(
    into: type[G],
    data: Any,
    *,
    source: str | None = None,
    registry: SpecialistRegistry | None = None,
    backends: BackendRegistry | None = None,
) -> G:
    return _load(into, data, None, source, registry, backends)


def _load(
    into: type[G],
    data: Any,
    loaded: LoadedYaml | None,
    source: str | None,
    registry: SpecialistRegistry | None,
    backends: BackendRegistry | None,
    text: str | None = None,
) -> G:
    locate = _Locator(data, loaded, text)
    if not isinstance(data, dict):
        raise GraphFileError(
            [
                locate.issue(
                    (),
                    "a graph file must be a mapping with name, specialists, nodes and edges",
                    hint="see graphs/support_triage.yaml for an example",
                )
            ],
            source,
        )
    try:
        spec = into.model_validate(data)
    except ValidationError as exc:
        raise GraphFileError([_schema_issue(e, locate) for e in exc.errors()], source) from None
    checker = _GraphChecker(
        spec, locate, registry or default_registry(), backends or default_backends()
    )
    issues = checker.run()
    if issues:
        raise GraphFileError(issues, source)
    return spec


# -- mapping pydantic errors back to the file ----------------------------------------------


class _Locator:
    """Turns pydantic locations into document paths and document paths into positions."""

    def __init__(self, data: Any, loaded: LoadedYaml | None, text: str | None = None) -> None:
        self.data = data
        self.loaded = loaded
        self.lines = text.splitlines() if text is not None else []

    def doc_path(self, loc: Sequence[str | int]) -> Loc:
        # pydantic puts the union tag (a node's kind) into locations; the file has no such level.
        path: list[str | int] = []
        current = self.data
        for element in loc:
            if (
                len(path) == 2
                and path[0] == "nodes"
                and isinstance(current, dict)
                and current.get("kind") == element
            ):
                continue
            if isinstance(current, dict):
                current = current.get(element)
            elif isinstance(current, list) and isinstance(element, int) and element < len(current):
                current = current[element]
            else:
                current = None
            path.append(element)
        return tuple(path)

    def issue(
        self,
        path: Loc,
        message: str,
        *,
        hint: str | None = None,
        key: bool = False,
        column_offset: int | None = None,
    ) -> GraphIssue:
        line = column = None
        if self.loaded is not None:
            pos = self.loaded.key_position(path) if key else self.loaded.position(path)
            if pos is not None:
                line, column = pos.line, pos.column
                if column_offset is not None:
                    line, column = self.inside_scalar(line, column, column_offset)
        return GraphIssue(message, path=path, line=line, column=column, hint=hint)

    def inside_scalar(self, line: int, column: int, offset: int) -> tuple[int, int]:
        """Where character `offset` of a scalar's value sits in the file, for a scalar that
        starts at (line, column): plain, quoted, or a folded/literal block over several lines."""
        if not 0 < line <= len(self.lines):
            return line, column + offset
        first = self.lines[line - 1]
        marker = first[column - 1 : column]
        pieces: list[tuple[int, int, str]] = []  # (line, column, text) of each content line
        if marker in (">", "|"):
            indent = None
            for number in range(line + 1, len(self.lines) + 1):
                raw = self.lines[number - 1]
                stripped = raw.lstrip(" ")
                if not stripped:
                    continue
                width = len(raw) - len(stripped)
                if indent is None:
                    indent = width
                if width < indent:
                    break
                pieces.append((number, indent + 1, raw[indent:]))
        else:
            start = column + 1 if marker in ("'", '"') else column
            pieces.append((line, start, first[start - 1 :]))
            number = line + 1
            while number <= len(self.lines) and self.lines[number - 1][: column - 1].isspace():
                raw = self.lines[number - 1]
                stripped = raw.lstrip(" ")
                pieces.append((number, len(raw) - len(stripped) + 1, stripped))
                number += 1
        remaining = offset
        for number, start, content in pieces:
            if remaining <= len(content):
                return number, start + remaining
            remaining -= len(content) + 1  # the newline or the folding space
        return line, column + offset


def _model_at(data: Any, path: Loc) -> type[BaseModel] | None:
    """The spec model that describes the mapping at `path`, for "did you mean" hints."""
    if path == ():
        return GraphModel
    head, rest = path[0], path[1:]
    if head == "policies" and rest == ():
        return Policies
    if head == "specialists" and len(rest) == 1:
        return SpecialistBinding
    if head == "servers" and len(rest) == 1:
        return MCPServerSpec
    if head == "frontier" and rest == ():
        return FrontierSpec
    if head == "edges" and len(rest) == 1:
        return EdgeSpec
    if head == "nodes" and rest:
        node = data.get("nodes", {}).get(rest[0]) if isinstance(data, dict) else None
        kind = node.get("kind") if isinstance(node, dict) else None
        kinds: dict[str, type[BaseModel]] = {"set": SetNodeSpec, "compose": ComposeNodeSpec}
        node_model = kinds.get(str(kind), SpecialistsNodeSpec)
        if len(rest) == 1:
            return node_model
        if len(rest) == 3 and rest[1] == "subtasks":
            return SubtaskSpec
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _schema_issue(error: ErrorDetails, locate: _Locator) -> GraphIssue:
    path = locate.doc_path(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(locate.data, path[:-1])
        allowed = _field_names(model) if model else []
        close = get_close_matches(str(path[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else None
        if allowed:
            hint = (hint + " " if hint else "") + f"Allowed keys: {', '.join(allowed)}."
        return locate.issue(path, f"unknown key {path[-1]!r}", hint=hint, key=True)
    if kind == "missing":
        return locate.issue(path[:-1], f"missing required key {path[-1]!r}")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return locate.issue(
            (*path, "kind") if kind == "union_tag_invalid" else path,
            "unknown node kind" if kind == "union_tag_invalid" else "a node needs a `kind`",
            hint="use `kind: specialists` (run specialist subtasks), `kind: set` (write fields) "
            "or `kind: compose` (the frontier model writes a field)",
        )
    value = error.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return locate.issue(path, f"{error['msg']}{shown}")


# -- graph checks --------------------------------------------------------------------------


class _GraphChecker:
    """Checks that need the whole graph: names, edges, reachability, expressions."""

    def __init__(
        self,
        spec: GraphModel,
        locate: _Locator,
        registry: SpecialistRegistry,
        backends: BackendRegistry,
    ) -> None:
        self.spec = spec
        self.locate = locate
        self.registry = registry
        self.backends = backends
        self.issues: list[GraphIssue] = []
        self.outputs: dict[str, set[str] | None] = {}  # binding -> output keys (None: unknown)

    @cached_property
    def subtasks(self) -> dict[str, tuple[str, SubtaskSpec]]:
        return self.spec.subtasks()

    def add(self, path: Loc, message: str, **kwargs: Any) -> None:
        self.issues.append(self.locate.issue(path, message, **kwargs))

    def run(self) -> list[GraphIssue]:
        self.check_specialists()
        self.check_frontier()
        subtask_ids = self.check_subtasks()
        self.check_set_nodes(subtask_ids)
        self.check_edges(subtask_ids)
        if not self.issues:
            self.check_reachability()
        return self.issues

    def check_specialists(self) -> None:
        for key, binding in self.spec.specialists.items():
            self.check_backend(key, binding)
            name = binding.uses or key
            remote = binding.via != "inprocess"
            if remote and binding.via not in self.spec.servers:
                self.add(
                    ("specialists", key, "via"),
                    f"unknown server {binding.via!r}",
                    hint=_did_you_mean(
                        binding.via,
                        ["inprocess", *self.spec.servers],
                        "declare it under `servers:`, or use `inprocess`",
                    ),
                )
            if remote and binding.options:
                self.add(
                    ("specialists", key, "options"),
                    "options apply to in-process specialists",
                    key=True,
                    hint="configure the MCP server instead",
                )
            if remote and name not in self.registry.names():
                # A third-party tool: its contract is read from the server when it starts.
                self.outputs[key] = None
                continue
            try:
                cls = self.registry.get(name)
            except UnknownSpecialistError as exc:
                where: Loc = ("specialists", key, "uses") if binding.uses else ("specialists", key)
                self.add(
                    where,
                    str(exc).split(" Register")[0],
                    key=binding.uses is None,
                    hint="register it with orchestrator.register_specialist or the "
                    "`orchestrator.specialists` entry point",
                )
                self.outputs[key] = None
                continue
            self.outputs[key] = set(cls.output_model.model_fields)
            try:
                cls.options_model.model_validate(binding.options)
            except ValidationError as exc:
                for err in exc.errors():
                    path: Loc = ("specialists", key, "options", *err["loc"])
                    if err["type"] == "extra_forbidden":
                        allowed = list(cls.options_model.model_fields)
                        self.add(
                            path,
                            f"unknown option {err['loc'][-1]!r} for specialist {name!r}",
                            key=True,
                            hint=f"allowed: {', '.join(allowed)}",
                        )
                    else:
                        self.add(path, f"invalid option: {err['msg']}")

    def check_backend(self, key: str, binding: SpecialistBinding) -> None:
        """The backend is registered, and the binding has an endpoint exactly when the
        backend takes one, valid for it."""
        where: Loc = ("specialists", key)
        if binding.backend not in self.backends.names():
            self.add(
                (*where, "backend"),
                f"unknown backend {binding.backend!r}",
                hint=_did_you_mean(
                    binding.backend,
                    self.backends.names(),
                    "register it with register_backend or the `orchestrator.backends` entry point",
                ),
            )
            return
        try:
            backend = self.backends.get(binding.backend)
        except ConfigurationError as exc:  # registered, but it cannot be loaded here
            self.add((*where, "backend"), str(exc))
            return
        if backend.config_model is None:
            if binding.endpoint is not None:
                self.add(
                    (*where, "endpoint"),
                    f"`endpoint` does not apply to `backend: {binding.backend}`",
                    key=True,
                    hint="remove it, or set `backend: vllm` to run the model on that server",
                )
        elif binding.endpoint is None:
            self.add(
                where,
                f"`backend: {binding.backend}` needs an `endpoint` with `base_url` and `model`",
                hint="print a matching server command with "
                "`orchestrator specialists serve-command`",
            )
        else:
            try:
                backend_config(backend, binding)
            except ValidationError as exc:
                for err in exc.errors():
                    self.add(
                        (*where, "endpoint", *err["loc"]),
                        f"invalid endpoint for `backend: {binding.backend}`: {err['msg']}",
                    )

    def check_frontier(self) -> None:
        bindings = list(self.spec.specialists)
        ladders: list[tuple[Loc, list[Any]]] = [(("escalation",), list(self.spec.escalation))]
        for key, binding in self.spec.specialists.items():
            if binding.escalation is not None:
                ladders.append((("specialists", key, "escalation"), list(binding.escalation)))
        for base, ladder in ladders:
            for index, rung in enumerate(ladder):
                if rung.kind == "specialist" and rung.specialist not in self.spec.specialists:
                    self.add(
                        (*base, index, "specialist"),
                        f"unknown specialist {rung.specialist!r}",
                        hint=_did_you_mean(
                            rung.specialist, bindings, "name a key of `specialists:`"
                        ),
                    )
                if rung.kind == "frontier" and self.spec.frontier is None:
                    self.add(
                        (*base, index),
                        "a frontier rung needs a `frontier:` section",
                        hint="add `frontier: {model: claude-sonnet-5}`",
                    )
        for name, node in self.spec.nodes.items():
            needs_frontier = getattr(node, "kind", None) == "compose" or (
                isinstance(node, SpecialistsNodeSpec) and node.planner == "frontier"
            )
            if needs_frontier and self.spec.frontier is None:
                self.add(
                    ("nodes", name),
                    f"node {name!r} needs the frontier model, but the graph "
                    "has no `frontier:` section",
                    key=True,
                    hint="add `frontier: {model: claude-sonnet-5}`",
                )
            if isinstance(node, SpecialistsNodeSpec):
                for index, tool in enumerate(node.tools or []):
                    if tool not in self.spec.specialists:
                        self.add(
                            ("nodes", name, "tools", index),
                            f"unknown specialist {tool!r}",
                            hint=_did_you_mean(tool, bindings, "name a key of `specialists:`"),
                        )

    def check_subtasks(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for node_name, node in self.spec.nodes.items():
            if not isinstance(node, SpecialistsNodeSpec):
                continue
            local = {s.id for s in node.subtasks}
            for index, sub in enumerate(node.subtasks):
                base: Loc = ("nodes", node_name, "subtasks", index)
                if sub.id in ids:
                    self.add(
                        (*base, "id"),
                        f"subtask id {sub.id!r} is already used in node {ids[sub.id]!r}",
                        hint="subtask ids must be unique in the graph",
                    )
                ids.setdefault(sub.id, node_name)
                if sub.specialist not in self.spec.specialists:
                    self.add(
                        (*base, "specialist"),
                        f"unknown specialist {sub.specialist!r}",
                        hint=_did_you_mean(
                            sub.specialist, self.spec.specialists, "declare it under `specialists:`"
                        ),
                    )
                for dep_index, dep in enumerate(sub.depends_on):
                    if dep not in local:
                        self.add(
                            (*base, "depends_on", dep_index),
                            f"{sub.id!r} depends on unknown subtask {dep!r}",
                            hint=_did_you_mean(
                                dep, local - {sub.id}, "depends_on names subtasks of the same node"
                            ),
                        )
                    elif dep == sub.id:
                        self.add(
                            (*base, "depends_on", dep_index),
                            f"subtask {sub.id!r} depends on itself",
                        )
            self.check_dependency_cycles(node_name, node)
        # Inputs may refer to any subtask id, so they are checked once all ids are known.
        for node_name, node in self.spec.nodes.items():
            if isinstance(node, SpecialistsNodeSpec):
                for index, sub in enumerate(node.subtasks):
                    self.check_input(("nodes", node_name, "subtasks", index), sub, ids)
        return ids

    def check_dependency_cycles(self, node_name: str, node: SpecialistsNodeSpec) -> None:
        deps = {s.id: [d for d in s.depends_on if d != s.id] for s in node.subtasks}
        cycle = _find_cycle(deps)
        if cycle:
            index = next(i for i, s in enumerate(node.subtasks) if s.id == cycle[0])
            self.add(
                ("nodes", node_name, "subtasks", index, "depends_on"),
                "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
                hint="remove one of these depends_on entries",
            )

    def check_input(self, base: Loc, sub: SubtaskSpec, ids: dict[str, str]) -> None:
        if sub.specialist in self.spec.specialists:
            try:
                cls = self.registry.get(self.spec.specialist_name(sub.specialist))
            except UnknownSpecialistError:
                cls = None  # reported with the binding, or a third-party MCP tool
            if cls is not None:
                fields = cls.input_model.model_fields
                for key in sub.input:
                    if key not in fields:
                        self.add(
                            (*base, "input", key),
                            f"unknown input {key!r} for specialist {sub.specialist!r}",
                            key=True,
                            hint=f"its inputs are: {', '.join(fields)}",
                        )
                for key, field in fields.items():
                    if field.is_required() and key not in sub.input:
                        self.add(
                            (*base, "input"),
                            f"missing input {key!r} for specialist {sub.specialist!r}",
                        )
        for key, value in sub.input.items():
            self.check_value((*base, "input", key), value, ids)

    def check_value(self, path: Loc, value: Any, ids: dict[str, str]) -> None:
        if isinstance(value, str) and is_template(value):
            try:
                template = parse_template(value)
            except ExpressionError as exc:
                self.add(
                    path,
                    f"invalid template: {exc.message}",
                    hint=exc.hint,
                    column_offset=exc.column,
                )
                return
            for expression in template.expressions:
                self.check_names(path, expression, ids)
        elif isinstance(value, dict):
            for k, v in value.items():
                self.check_value((*path, k), v, ids)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.check_value((*path, i), v, ids)

    def check_names(self, path: Loc, expression: Expression, ids: dict[str, str]) -> None:
        for name in sorted(expression.names):
            if name not in ROOT_NAMES and name not in ids:
                self.add(
                    path,
                    f"unknown name {name!r} in {expression.source!r}",
                    hint=_did_you_mean(
                        name, [*ROOT_NAMES, *ids], "names are subtask ids, `request` or `fields`"
                    ),
                )
        for chain in expression.paths:
            root = chain[0]
            if root in ids and len(chain) > 1:
                binding = self.subtasks[root][1].specialist
                known = self.outputs.get(binding)
                attr = chain[1]
                if known is not None and attr not in known and attr not in RESULT_ATTRIBUTES:
                    allowed = sorted(known) + list(RESULT_ATTRIBUTES)
                    self.add(
                        path,
                        f"{root!r} has no attribute {attr!r}",
                        hint=_did_you_mean(str(attr), allowed, f"available: {', '.join(allowed)}"),
                    )
            if root == "request" and len(chain) > 1 and chain[1] not in ("text", "metadata"):
                self.add(
                    path,
                    f"request has no attribute {chain[1]!r}",
                    hint="use request.text or request.metadata.KEY",
                )

    def check_set_nodes(self, ids: dict[str, str]) -> None:
        for node_name, node in self.spec.nodes.items():
            if isinstance(node, SetNodeSpec):
                for key, value in node.set.items():
                    self.check_value(("nodes", node_name, "set", key), value, ids)

    def check_edges(self, ids: dict[str, str]) -> None:
        nodes = self.spec.nodes
        defaults: dict[str, int] = {}
        for index, edge in enumerate(self.spec.edges):
            base: Loc = ("edges", index)
            if edge.source == END:
                self.add((*base, "from"), "an edge cannot start at END")
            elif edge.source != START and edge.source not in nodes:
                self.add(
                    (*base, "from"),
                    f"edge from unknown node {edge.source!r}",
                    hint=_did_you_mean(edge.source, [START, *nodes], None),
                )
            if edge.to == START:
                self.add((*base, "to"), "an edge cannot lead to START")
            elif edge.to != END and edge.to not in nodes:
                self.add(
                    (*base, "to"),
                    f"edge to nowhere: no node named {edge.to!r}",
                    hint=_did_you_mean(edge.to, [*nodes, END], None),
                )
            if edge.when is None:
                if edge.source in defaults:
                    self.add(
                        base,
                        f"node {edge.source!r} has two edges without `when` (the "
                        f"other is edges[{defaults[edge.source]}])",
                        hint="a node has at most one default edge; give the others a `when`",
                    )
                defaults.setdefault(edge.source, index)
            else:
                try:
                    expression = parse_expression(edge.when)
                except ExpressionError as exc:
                    self.add(
                        (*base, "when"),
                        f"invalid condition: {exc.message}",
                        hint=exc.hint,
                        column_offset=exc.column,
                    )
                else:
                    self.check_names((*base, "when"), expression, ids)
        first_edge = self.first_edge_by_source()
        if START not in first_edge:
            self.add(
                ("edges",),
                "no edge leaves START",
                hint=f"add `- {{from: START, to: {next(iter(nodes))}}}`",
            )
        for source, first in first_edge.items():
            if source not in defaults and (source == START or source in nodes):
                self.add(
                    ("edges", first),
                    f"every edge out of {source!r} has a `when`, so a run "
                    "where none holds would stop with nowhere to go",
                    hint=f"add a default edge: `- {{from: {source}, to: END}}`",
                )

    def check_reachability(self) -> None:
        # Linear in nodes and edges: one walk from START, one backwards from the exits and
        # one strongly-connected-components pass (a walk per node took 35 s for 12,000 nodes).
        successors: dict[str, set[str]] = {n: set() for n in [START, *self.spec.nodes]}
        for edge in self.spec.edges:
            successors[edge.source].add(edge.to)
        reached = _reach(START, successors)
        for name in self.spec.nodes:
            if name not in reached:
                self.add(
                    ("nodes", name),
                    f"node {name!r} is unreachable from START",
                    key=True,
                    hint="add an edge that leads to it, or remove it",
                )
        # A node with no outgoing edge ends the run, like an edge to END.
        exits = {n for n, s in successors.items() if not s and n != START} | {END}
        predecessors: dict[str, set[str]] = {}
        for source, targets in successors.items():
            for target in targets:
                predecessors.setdefault(target, set()).add(source)
        can_exit: set[str] = set()
        for exit_node in exits:
            can_exit |= _reach(exit_node, predecessors)
        in_cycle = _nodes_in_cycles(successors)
        first_edge = self.first_edge_by_source()
        for name in self.spec.nodes:
            if name in reached and name in in_cycle and name not in can_exit:
                self.add(
                    ("edges", first_edge[name]),
                    f"node {name!r} is in a cycle with no exit: no path from it reaches END",
                    hint="add an edge out of the cycle to END",
                )

    def first_edge_by_source(self) -> dict[str, int]:
        """Index of the first edge leaving each node."""
        first: dict[str, int] = {}
        for index, edge in enumerate(self.spec.edges):
            first.setdefault(edge.source, index)
        return first


def _reach(start: str, successors: dict[str, set[str]]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for nxt in successors.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _nodes_in_cycles(successors: dict[str, set[str]]) -> set[str]:
    """Nodes on some cycle: members of a strongly connected component of two or more
    nodes, or with an edge to themselves (Tarjan's algorithm without recursion, so that a
    long chain cannot exhaust the stack)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: set[str] = set()

    def enter(node: str) -> tuple[str, Iterator[str]]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return node, iter(successors.get(node, ()))

    for root in successors:
        if root in index:
            continue
        work = [enter(root)]
        while work:
            node, pending = work[-1]
            for nxt in pending:
                if nxt not in index:
                    work.append(enter(nxt))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in successors.get(node, ()):
                        found.update(component)
    return found


def _find_cycle(deps: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a list of ids, or None (depth-first, without recursion)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in deps:
        if start in state:
            continue
        state[start] = 1
        path = [start]
        pending = [iter(deps[start])]
        while pending:
            for dep in pending[-1]:
                if state.get(dep) == 1:
                    return path[path.index(dep) :]
                if dep in deps and dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    pending.append(iter(deps[dep]))
                    break
            else:
                state[path.pop()] = 2
                pending.pop()
    return None


def _did_you_mean(name: str, candidates: Iterable[str], fallback: str | None) -> str | None:
    close = get_close_matches(name, list(candidates), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return fallback
