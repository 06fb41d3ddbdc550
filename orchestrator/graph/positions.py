"""A YAML loader that remembers where every key and value starts.

Graph files are YAML and every mistake in them must be reported with a line and a column.
:func:`load_yaml` composes the node tree with PyYAML's safe loader, builds the plain Python
data itself (scalars typed exactly as :func:`yaml.safe_load` types them) and records the
position of every mapping key and every value by its path in the document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator._errors import UsageError
from orchestrator.graph.expressions import INT_RANGE

__all__ = ["LoadedYaml", "Path_", "Position", "YamlSyntaxError", "load_yaml"]

Path_ = tuple[str | int, ...]
"""A location inside a document, e.g. ``("nodes", "triage", "subtasks", 0, "specialist")``."""

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"

# Aliases share nodes, so a small document can expand exponentially ("billion laughs").
_MAX_EXPANDED_NODES = 1_000_000
#: Deepest nesting of lists and mappings accepted. Graph files need about eight levels;
#: PyYAML composes (and the builder walks) nested values recursively, so without a cap a
#: file nested a thousand levels deep ends in a RecursionError instead of an error message.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the source text."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


class YamlSyntaxError(UsageError, ValueError):
    """The text is not a single well-formed YAML document the framework accepts."""

    def __init__(self, message: str, position: Position | None = None) -> None:
        self.message = message
        self.position = position
        self.line = position.line if position is not None else None
        self.column = position.column if position is not None else None
        super().__init__(f"{position}: {message}" if position is not None else message)


@dataclass(frozen=True)
class LoadedYaml:
    """Plain data of a YAML document plus the positions of its keys and values."""

    data: Any
    key_positions: Mapping[Path_, Position]
    value_positions: Mapping[Path_, Position]

    def position(self, path: Sequence[str | int]) -> Position | None:
        """Best position for an error at ``path``; walks up to the nearest known ancestor."""
        current = tuple(path)
        while True:
            found = _lookup(self.value_positions, current) or _lookup(self.key_positions, current)
            if found is not None:
                return found
            if not current:
                return None
            current = current[:-1]

    def key_position(self, path: Sequence[str | int]) -> Position | None:
        """Where the key of the entry at ``path`` starts, else :meth:`position`."""
        return _lookup(self.key_positions, tuple(path)) or self.position(path)


def _lookup(positions: Mapping[Path_, Position], path: tuple[Any, ...]) -> Position | None:
    try:
        return positions.get(path)
    except TypeError:  # an unhashable path element: no position rather than a crash
        return None


def _position(mark: yaml.Mark | None) -> Position | None:
    return None if mark is None else Position(mark.line + 1, mark.column + 1)


def _node_position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _offset_position(text: str, offset: int) -> Position:
    before = text[:offset]
    return Position(before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1)


def _marked_error(exc: yaml.MarkedYAMLError) -> YamlSyntaxError:
    if (
        isinstance(exc, yaml.composer.ComposerError)
        and exc.context is not None
        and exc.context.startswith("expected a single document")
    ):
        return YamlSyntaxError(
            "expected one document, but found another", _position(exc.problem_mark)
        )
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    problem_position = _position(exc.problem_mark)
    context_position = _position(exc.context_mark)
    # An unclosed quote or bracket is only noticed at the end of the file; the place
    # where the unclosed construct started is the useful one to report.
    at_end = "end of stream" in problem or "<stream end>" in problem
    position = context_position if at_end and context_position else problem_position
    if problem and context:
        where = ""
        if context_position is not None and context_position != position:
            where = f" at {context_position}"
        message = f"{problem} ({context}{where})"
    else:
        message = problem or context or "invalid YAML"
    if "'\\t'" in problem:
        message += "; indent with spaces, YAML does not allow tabs there"
    if exc.note:
        message = f"{message}; {exc.note.strip()}"
    return YamlSyntaxError(message, position or context_position)


class _DepthLimitedLoader(yaml.SafeLoader):
    """The safe loader, refusing values nested deeper than :data:`MAX_DEPTH` before its
    recursive composer runs out of stack."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self._depth >= MAX_DEPTH:
            raise YamlSyntaxError(
                f"values are nested more than {MAX_DEPTH} levels deep",
                _position(self.peek_event().start_mark),  # type: ignore[no-untyped-call]
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    """Turns a composed node tree into plain data, recording positions on the way."""

    def __init__(self) -> None:
        self.key_positions: dict[Path_, Position] = {}
        self.value_positions: dict[Path_, Position] = {}
        self._constructor = yaml.SafeLoader("")
        self._active: set[int] = set()
        self._expanded = 0

    def close(self) -> None:
        self._constructor.dispose()

    def build(self, node: Node, path: Path_) -> Any:
        self._expanded += 1
        if self._expanded > _MAX_EXPANDED_NODES:
            raise YamlSyntaxError(
                "the document expands to too many values through aliases", _node_position(node)
            )
        if len(path) > MAX_DEPTH:  # aliases can nest values deeper than the text does
            raise YamlSyntaxError(
                f"values are nested more than {MAX_DEPTH} levels deep (through aliases)",
                _node_position(node),
            )
        self.value_positions[path] = _node_position(node)
        if isinstance(node, ScalarNode):
            value = self._scalar(node)
            if isinstance(value, int) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
                raise YamlSyntaxError(
                    "integer out of range: values must fit in 64 bits "
                    "(quote it to keep it as text)",
                    _node_position(node),
                )
            return value
        if id(node) in self._active:
            raise YamlSyntaxError(
                "an alias refers to a value that contains it", _node_position(node)
            )
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        raise YamlSyntaxError(f"unsupported YAML node {type(node).__name__}", _node_position(node))

    def _scalar(self, node: ScalarNode) -> Any:
        try:
            return self._constructor.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            raise _marked_error(exc) from None
        except Exception as exc:  # e.g. `!!int abc` or the date `2024-13-45`
            raise YamlSyntaxError(
                f"cannot read {node.value!r} as {node.tag}: {exc}", _node_position(node)
            ) from None

    def _sequence(self, node: SequenceNode, path: Path_) -> list[Any]:
        if node.tag != _SEQ_TAG:
            raise YamlSyntaxError(f"unsupported tag {node.tag!r}", _node_position(node))
        return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]

    def _mapping(self, node: MappingNode, path: Path_) -> dict[Any, Any]:
        if node.tag != _MAP_TAG:
            raise YamlSyntaxError(f"unsupported tag {node.tag!r}", _node_position(node))
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            key_position = _node_position(key_node)
            if key_node.tag == _MERGE_TAG:
                raise YamlSyntaxError("merge keys (<<) are not supported", key_position)
            if not isinstance(key_node, ScalarNode):
                raise YamlSyntaxError("mapping keys must be plain scalars", key_position)
            # safe_load reads a bare `=` key as the string "=" too.
            key = key_node.value if key_node.tag == _VALUE_TAG else self._scalar(key_node)
            try:
                previous = first_seen.get(key)
            except TypeError:
                raise YamlSyntaxError("mapping keys must be hashable", key_position) from None
            if previous is not None:
                raise YamlSyntaxError(
                    f"duplicate key {key!r} (first at line {previous.line})", key_position
                )
            first_seen[key] = key_position
            # Paths hold str and int keys as they are; other scalars as written in the source.
            element: str | int = key if isinstance(key, str | int) else key_node.value
            child = (*path, element)
            self.key_positions[child] = key_position
            result[key] = self.build(value_node, child)
        return result


def load_yaml(text: str) -> LoadedYaml:
    """Parse one YAML document, keeping the position of every key and value.

    Raises :class:`YamlSyntaxError` for malformed YAML, several documents, duplicate keys,
    merge keys and tags the safe loader cannot build. Values reached through an alias are
    positioned at the anchored original.
    """
    try:
        root = yaml.compose(text, Loader=_DepthLimitedLoader)
    except yaml.MarkedYAMLError as exc:
        raise _marked_error(exc) from None
    except yaml.reader.ReaderError as exc:
        raise YamlSyntaxError(
            f"unacceptable character #x{exc.character:04x}: {exc.reason}"
            if isinstance(exc.character, int)
            else str(exc),
            _offset_position(text, exc.position),
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc)) from None
    if root is None:
        return LoadedYaml(data=None, key_positions={}, value_positions={})
    builder = _Builder()
    try:
        data = builder.build(root, ())
    finally:
        builder.close()
    return LoadedYaml(
        data=data, key_positions=builder.key_positions, value_positions=builder.value_positions
    )
