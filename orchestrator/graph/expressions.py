"""Safe conditions and string templates for declarative graph files.

Graph files carry small conditions (``intent.label in ['billing', 'refund']``) and
templates (``"Customer said: {{ request.text }}"``). Both are parsed and checked when the
file is loaded, so a typo fails before anything runs, and evaluated later without
``eval``/``exec``/``compile``: the source goes through ``ast.parse(mode="eval")``, every
node is checked against a short whitelist and turned once into nested closures, which is
all that runs per evaluation.

The language is deliberately tiny: literals (str, int, float, bool, None, lists, tuples),
names with attribute chains and constant subscripts (``a.b['c'][0]``), the comparisons
``== != < <= > >= in not in`` (chained like Python), ``and``/``or``/``not`` and unary
minus. ``true``/``false``/``null``/``none`` are keywords, not names, so YAML authors can
write them the way YAML spells them.

Evaluation never raises for missing data: results of a failed step are simply absent at
run time, so a missing name, key, attribute or index is ``None``, ``None`` propagates
through chains, and ordering comparisons that cannot be made are ``False``. Checking that
names exist is the loader's job, using :attr:`Expression.names` and :attr:`Expression.paths`.
"""

from __future__ import annotations

import ast
import io
import numbers
import operator
import re
import tokenize
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator._errors import UsageError

__all__ = [
    "Expression",
    "ExpressionError",
    "Template",
    "is_template",
    "parse_expression",
    "parse_template",
]

#: Integers a graph may hold: run state is checkpointed with msgpack (64 bits), and Python
#: refuses to print integers of more than 4,300 digits.
INT_RANGE: Final = (-(2**63), 2**64 - 1)

_SYNTAX_HINT: Final = "conditions use Python-like syntax: a.b == 'x' and c.d >= 0.5"

# YAML authors write these in lower case; they are constants, never context lookups.
_KEYWORDS: Final[Mapping[str, object]] = {
    "true": True,
    "false": False,
    "null": None,
    "none": None,
}


class ExpressionError(UsageError, ValueError):
    """A malformed or disallowed expression (a graph file's mistake; the loader reports it
    with the file's line).

    ``source`` is the whole string that was parsed (the whole template for a placeholder),
    ``column`` the 0-based offset into it where the problem is (0 when unknown),
    ``message`` what is wrong and ``hint`` how to fix it, if there is something to say.
    """

    def __init__(
        self, message: str, source: str = "", column: int = 0, hint: str | None = None
    ) -> None:
        self.message = message
        self.source = source
        self.column = column
        self.hint = hint
        text = f"{message} (column {column} of {source!r})" if source else message
        if hint:
            text += f"; hint: {hint}"
        super().__init__(text)

    def __reduce__(self) -> tuple[Any, ...]:
        # The keyword-style constructor would otherwise break pickling (multiprocessing).
        return (type(self), (self.message, self.source, self.column, self.hint))


_Eval = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Expression:
    """A checked expression, ready to evaluate against a context mapping.

    ``names`` holds the root names read; ``paths`` every maximal chain read from a root,
    in source order without duplicates (``a.b['c'].d`` gives ``("a", "b", "c", "d")``;
    a chain stops at its first integer index, as positions are not part of a schema).
    """

    source: str
    names: frozenset[str]
    paths: tuple[tuple[str, ...], ...]
    _evaluate: _Eval = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against ``context``; missing data reads as ``None``, never raises."""
        return self._evaluate(context)

    def __reduce__(self) -> tuple[Any, ...]:
        # Closures do not pickle; the source is enough to rebuild the same expression.
        return (parse_expression, (self.source,))


def parse_expression(source: str) -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` if it is not allowed."""
    return _parse(source, whole=source, offset=0, expression_source=source)


@dataclass(frozen=True)
class Template:
    """A string with ``{{ expression }}`` placeholders; ``parts`` alternates text and code."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def expressions(self) -> tuple[Expression, ...]:
        """The placeholders' expressions, in order."""
        return tuple(part for part in self.parts if isinstance(part, Expression))

    def render(self, context: Mapping[str, Any]) -> Any:
        """Fill the placeholders from ``context``.

        A template that is exactly one placeholder returns the raw value, so a graph can
        pass a list or a number through unchanged; otherwise values are joined as text,
        ``None`` as the empty string.
        """
        parts = self.parts
        if len(parts) == 1:
            only = parts[0]
            return only.evaluate(context) if isinstance(only, Expression) else only
        pieces: list[str] = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            else:
                value = part.evaluate(context)
                pieces.append("" if value is None else str(value))
        return "".join(pieces)


def is_template(value: str) -> bool:
    """True when ``value`` contains a ``{{`` placeholder opening."""
    return "{{" in value


def parse_template(source: str) -> Template:
    """Split ``source`` into text and checked placeholder expressions.

    Error columns are offsets into the whole template, so a loader can point at them.
    """
    parts: list[str | Expression] = []
    position = 0
    while True:
        start = source.find("{{", position)
        if start < 0:
            if position < len(source):
                parts.append(source[position:])
            break
        if start > position:
            parts.append(source[position:start])
        inner_start = start + 2
        end = _find_close(source, inner_start)
        if end < 0:
            raise ExpressionError(
                "unclosed '{{' in template",
                source,
                start,
                hint="close each placeholder with '}}', e.g. 'Customer said: {{ request.text }}'",
            )
        inner = source[inner_start:end]
        if not inner.strip():
            raise ExpressionError(
                "empty placeholder in template",
                source,
                start,
                hint="put an expression between the braces, e.g. {{ request.text }}",
            )
        parts.append(
            _parse(inner, whole=source, offset=inner_start, expression_source=inner.strip())
        )
        position = end + 2
    return Template(source, tuple(parts))


def _find_close(source: str, start: int) -> int:
    """Index of the ``}}`` closing a placeholder opened before ``start``, or -1.

    Quotes are skipped so that ``{{ a == '}}' }}`` closes where the author meant; if the
    quotes never close, the first ``}}`` is used and the parser reports the bad string.
    """
    quote: str | None = None
    index = start
    length = len(source)
    while index < length:
        char = source[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif source.startswith("}}", index):
            return index
        index += 1
    return source.find("}}", start)


# --- parsing -------------------------------------------------------------------------


def _parse(text: str, *, whole: str, offset: int, expression_source: str) -> Expression:
    """Parse ``text``, which starts at ``offset`` in ``whole`` (the string shown in errors)."""
    # Newlines become spaces so YAML block scalars may span lines; same length, so every
    # column still maps one to one onto the original string.
    flat = text.replace("\r", " ").replace("\n", " ")
    body = flat.strip()
    # ast.parse rejects leading indentation; strip it and add it back to columns.
    base = offset + len(flat) - len(flat.lstrip())
    if not body:
        raise ExpressionError("empty expression", whole, offset, hint=_SYNTAX_HINT)
    if "\0" in body:
        raise ExpressionError(
            "null characters are not allowed in expressions", whole, base + body.index("\0")
        )
    try:
        # Invalid escapes ('\d') warn inside the parser; warnings must not depend on the
        # process's filters (pytest turns them into errors), the parse result is the same.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(body, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, body, whole, base) from None
    except (RecursionError, MemoryError):  # the parser's limits (`not not ...` 20,000 times)
        raise ExpressionError("expression is nested too deeply", whole, base) from None
    if "#" in body:
        _reject_comments(body, whole, base)
    compiler = _Compiler(body, whole, base)
    try:
        evaluate = compiler.compile(tree.body)
    except RecursionError:
        raise ExpressionError("expression is nested too deeply", whole, base) from None
    return Expression(
        expression_source,
        frozenset(compiler.names),
        tuple(compiler.paths),
        evaluate,
    )


_DETECTED_AT = re.compile(r"\s*\(detected at line \d+\)")
_SINGLE_EQUALS = re.compile(r"(?<![=!<>])=(?!=)")


def _syntax_error(exc: SyntaxError, body: str, whole: str, base: int) -> ExpressionError:
    message = _DETECTED_AT.sub("", exc.msg or "invalid syntax")
    # SyntaxError.offset is 1-based in characters; 0 or None means "at the end of input".
    offset = exc.offset or 0
    column = min(offset - 1, len(body)) if offset > 0 else len(body)
    hint = _SYNTAX_HINT
    if "&&" in body or "||" in body:
        hint = "use 'and', 'or' and 'not' instead of '&&', '||' and '!'"
    elif _SINGLE_EQUALS.search(body):
        hint = "use '==' to compare; '=' is not an operator in conditions"
    return ExpressionError(f"syntax error: {message}", whole, base + column, hint)


def _reject_comments(body: str, whole: str, base: int) -> None:
    # With newlines flattened, a comment would silently swallow the rest of a condition.
    try:
        for token in tokenize.generate_tokens(io.StringIO(body).readline):
            if token.type == tokenize.COMMENT:
                raise ExpressionError(
                    "comments are not allowed in expressions",
                    whole,
                    base + token.start[1],
                    hint="to compare with '#', put it inside quotes: a.b == '#'",
                )
    except tokenize.TokenError:  # pragma: no cover - ast.parse accepted the text already
        pass


# --- the interpreter's building blocks ------------------------------------------------


class _Const:
    """A constant node; the compiler folds through it (``-1``, ``not true``, literals)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, context: Mapping[str, Any]) -> Any:
        return self.value


class _ConstList:
    """A list literal of constants: a fresh list per evaluation, a tuple for ``in``."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Any, ...]) -> None:
        self.items = items

    def __call__(self, context: Mapping[str, Any]) -> Any:
        # A fresh list, so a caller mutating a rendered value cannot change the expression.
        return list(self.items)


def _lookup(value: Any, key: str | int) -> Any:
    """One step of a chain: mapping key, sequence index or attribute; ``None`` if absent."""
    if value is None:
        return None
    if type(value) is dict or isinstance(value, Mapping):  # the dict check is the fast path
        return value.get(key)
    if isinstance(key, int):
        if isinstance(value, Sequence):
            try:
                return value[key]
            except IndexError:
                return None
        return None
    return getattr(value, key, None)


def _ordering(compare: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    # Absent values and mismatched types make a condition false instead of failing a run.
    def ordered(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return False
        try:
            return compare(left, right)
        except TypeError:
            return False

    return ordered


def _contains(item: Any, container: Any) -> bool:
    if container is None:
        return False
    try:
        return item in container
    except TypeError:  # an unhashable item in a dict, a number in a string, ...
        return False


def _not_contains(item: Any, container: Any) -> bool:
    return not _contains(item, container)


def _negate(value: Any) -> Any:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return -value
    return None


_COMPARISONS: Final[Mapping[type[ast.cmpop], Callable[[Any, Any], Any]]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _ordering(operator.lt),
    ast.LtE: _ordering(operator.le),
    ast.Gt: _ordering(operator.gt),
    ast.GtE: _ordering(operator.ge),
    ast.In: _contains,
    ast.NotIn: _not_contains,
}

_ARITHMETIC: Final[Mapping[type[ast.operator], str]] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.MatMult: "@",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
}

_READ_ONLY_HINT: Final = (
    "expressions only read values: compare them with ==, !=, <, in ... and combine "
    "with and, or, not"
)
_TEMPLATE_HINT: Final = "to build text, use a template: 'Customer said: {{ request.text }}'"
_LIST_HINT: Final = "use a list: x in ['a', 'b']"

# What each disallowed node is called in messages, and how to do without it.
_DISALLOWED: Final[Mapping[type[ast.AST], tuple[str, str | None]]] = {
    ast.Call: ("function calls", _READ_ONLY_HINT),
    ast.Lambda: ("lambdas", _READ_ONLY_HINT),
    ast.ListComp: ("comprehensions", _READ_ONLY_HINT),
    ast.SetComp: ("comprehensions", _READ_ONLY_HINT),
    ast.DictComp: ("comprehensions", _READ_ONLY_HINT),
    ast.GeneratorExp: ("generator expressions", _READ_ONLY_HINT),
    ast.JoinedStr: ("f-strings", _TEMPLATE_HINT),
    ast.FormattedValue: ("f-strings", _TEMPLATE_HINT),
    ast.Starred: ("starred expressions (*x)", None),
    ast.NamedExpr: ("assignment expressions (:=)", "use '==' to compare"),
    ast.IfExp: ("conditional expressions (x if c else y)", "combine conditions with and/or"),
    ast.Dict: ("dict literals", _LIST_HINT),
    ast.Set: ("set literals", _LIST_HINT),
    ast.Await: ("await expressions", None),
    ast.Yield: ("yield expressions", None),
    ast.YieldFrom: ("yield expressions", None),
    ast.Slice: ("slices", "use a constant key: a['x'] or a[0]"),
}


class _Compiler:
    """Checks an ``ast`` tree against the whitelist and turns it into closures."""

    def __init__(self, text: str, whole: str, base: int) -> None:
        self.text = text  # what ast.parse saw: one line, stripped
        self.whole = whole  # the string errors point into
        self.base = base  # where ``text`` starts inside ``whole``
        # Dicts keep first-seen order and drop duplicates.
        self.names: dict[str, None] = {}
        self.paths: dict[tuple[str, ...], None] = {}

    # -- errors --

    def _column(self, byte_offset: int) -> int:
        # ast offsets count UTF-8 bytes; errors must count characters of the source.
        prefix = self.text.encode("utf-8")[:byte_offset]
        return self.base + len(prefix.decode("utf-8", "ignore"))

    def _error(
        self, node: ast.AST, message: str, hint: str | None = None, byte_offset: int | None = None
    ) -> ExpressionError:
        if byte_offset is None:
            byte_offset = getattr(node, "col_offset", 0)
        return ExpressionError(message, self.whole, self._column(byte_offset), hint)

    def _disallowed(self, node: ast.AST) -> ExpressionError:
        if isinstance(node, ast.BinOp):
            symbol = _ARITHMETIC.get(type(node.op), "?")
            return self._error(
                node,
                f"arithmetic ('{symbol}') is not allowed in expressions; only unary minus is",
                "compare values directly, e.g. a.b >= 0.5",
            )
        what, hint = _DISALLOWED.get(type(node), (f"{type(node).__name__} nodes", None))
        return self._error(node, f"{what} are not allowed in expressions", hint)

    # -- compilation --

    def compile(self, node: ast.expr) -> _Eval:
        if isinstance(node, ast.Constant):
            return _Const(self._constant(node))
        if isinstance(node, ast.Name) and node.id in _KEYWORDS:
            return _Const(_KEYWORDS[node.id])
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            return self._chain(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BoolOp):
            return self._bool(node)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.List | ast.Tuple):
            return self._sequence(node)
        raise self._disallowed(node)

    def _constant(self, node: ast.Constant) -> Any:
        value = node.value
        if isinstance(value, int) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise self._error(
                node,
                "integer literal out of range: integers must fit in 64 bits",
                "quote it to compare as text",
            )
        if value is None or isinstance(value, str | int | float):  # bool is an int
            return value
        if isinstance(value, bytes):
            raise self._error(node, "bytes literals are not allowed in expressions")
        if isinstance(value, complex):
            raise self._error(node, "complex numbers are not allowed in expressions")
        raise self._error(node, f"the literal {value!r} is not allowed in expressions")

    def _chain(self, node: ast.Name | ast.Attribute | ast.Subscript) -> _Eval:
        # ast nests a.b.c as ((a).b).c: collect the accessors outside-in, check them
        # inside-out so the leftmost problem is the one reported.
        accessors: list[ast.Attribute | ast.Subscript] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute | ast.Subscript):
            accessors.append(current)
            current = current.value
        if not isinstance(current, ast.Name):
            # Report what is wrong inside the base first (a call, arithmetic, ...).
            self.compile(current)
            raise self._error(
                current,
                "attributes and subscripts are only allowed on names, like a.b or a['x']",
            )
        if current.id in _KEYWORDS:
            raise self._error(
                current,
                f"{current.id!r} is a constant; attributes and subscripts are only allowed "
                "on names",
            )
        if current.id.startswith("_"):
            raise self._error(
                current,
                f"names starting with '_' are not allowed in expressions ({current.id!r})",
            )
        steps = [self._step(accessor) for accessor in reversed(accessors)]
        root = current.id
        self.names.setdefault(root)
        path = [root]
        for step in steps:
            if not isinstance(step, str):
                break
            path.append(step)
        self.paths.setdefault(tuple(path))
        return _chain_evaluator(root, tuple(steps))

    def _step(self, node: ast.Attribute | ast.Subscript) -> str | int:
        if isinstance(node, ast.Subscript):
            return self._key(node.slice)
        if node.attr.startswith("_"):
            # Point at the name itself: the base before it is fine.
            end = node.end_col_offset or 0
            raise self._error(
                node,
                f"attribute names starting with '_' are not allowed ({node.attr!r})",
                "fields starting with '_' are private",
                byte_offset=max(end - len(node.attr.encode("utf-8")), 0),
            )
        return node.attr

    def _key(self, node: ast.expr) -> str | int:
        key: object = _NOT_CONSTANT
        if isinstance(node, ast.Constant):
            key = node.value
        elif (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and type(node.operand.value) is int
        ):
            key = -node.operand.value
        if type(key) is str:
            if key.startswith("_"):
                raise self._error(
                    node,
                    f"keys starting with '_' are not allowed in expressions ({key!r})",
                    "fields starting with '_' are private",
                )
            return key
        if type(key) is int:  # bool is excluded on purpose: a[True] is almost surely a typo
            return key
        if isinstance(node, ast.BinOp) or type(node) in _DISALLOWED:
            raise self._disallowed(node)
        raise self._error(
            node,
            "subscripts must be a constant string or integer, like a['x'] or a[0]",
            "use a.b.c to read nested fields",
        )

    def _compare(self, node: ast.Compare) -> _Eval:
        left = self.compile(node.left)
        operations: list[Callable[[Any, Any], Any]] = []
        for op in node.ops:
            if isinstance(op, ast.Is | ast.IsNot):
                raise self._error(
                    node,
                    "'is' comparisons are not allowed in expressions",
                    "use == and != instead, e.g. a.b == null",
                )
            operations.append(_COMPARISONS[type(op)])
        rights = [self.compile(comparator) for comparator in node.comparators]
        last = rights[-1]
        if isinstance(last, _ConstList) and isinstance(node.ops[-1], ast.In | ast.NotIn):
            # The common `x in ['a', 'b']`: test against one tuple, build no list per run.
            rights[-1] = _Const(last.items)
        if len(operations) == 1:
            return _binary_comparison(operations[0], left, rights[0])
        return _chained_comparison(left, tuple(zip(operations, rights, strict=True)))

    def _bool(self, node: ast.BoolOp) -> _Eval:
        operands = tuple(self.compile(value) for value in node.values)
        if isinstance(node.op, ast.And):
            return _and(operands)
        return _or(operands)

    def _unary(self, node: ast.UnaryOp) -> _Eval:
        if isinstance(node.op, ast.Not):
            operand = self.compile(node.operand)
            if isinstance(operand, _Const):
                return _Const(not operand.value)
            return _not(operand)
        if isinstance(node.op, ast.USub):
            operand = self.compile(node.operand)
            if isinstance(operand, _Const):
                value = operand.value
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise self._error(node, "unary minus needs a number")
                return _Const(-value)
            return _minus(operand)
        symbol = "~" if isinstance(node.op, ast.Invert) else "+"
        raise self._error(
            node, f"the unary '{symbol}' operator is not allowed in expressions; only '-' is"
        )

    def _sequence(self, node: ast.List | ast.Tuple) -> _Eval:
        items = tuple(self.compile(element) for element in node.elts)
        if all(isinstance(item, _Const) for item in items):
            values = tuple(item.value for item in items if isinstance(item, _Const))
            return _ConstList(values) if isinstance(node, ast.List) else _Const(values)
        if isinstance(node, ast.List):
            return _list(items)
        return _tuple(items)


_NOT_CONSTANT: Final = object()


# Closure factories live at module level so each closure captures only what it needs.


def _chain_evaluator(root: str, steps: tuple[str | int, ...]) -> _Eval:
    if not steps:

        def name(context: Mapping[str, Any]) -> Any:
            return context.get(root)

        return name
    if len(steps) == 1:
        (key,) = steps

        def attribute(context: Mapping[str, Any]) -> Any:
            return _lookup(context.get(root), key)

        return attribute

    def chain(context: Mapping[str, Any]) -> Any:
        value = context.get(root)
        for step in steps:
            if value is None:
                return None
            value = _lookup(value, step)
        return value

    return chain


def _binary_comparison(compare: Callable[[Any, Any], Any], left: _Eval, right: _Eval) -> _Eval:
    def comparison(context: Mapping[str, Any]) -> Any:
        return compare(left(context), right(context))

    return comparison


def _chained_comparison(
    left: _Eval, pairs: tuple[tuple[Callable[[Any, Any], Any], _Eval], ...]
) -> _Eval:
    # Python semantics: a < b < c is (a < b) and (b < c), b evaluated once, short-circuit.
    def comparison(context: Mapping[str, Any]) -> Any:
        current = left(context)
        result: Any = True
        for compare, right in pairs:
            following = right(context)
            result = compare(current, following)
            if not result:
                return result
            current = following
        return result

    return comparison


def _and(operands: tuple[_Eval, ...]) -> _Eval:
    # Python semantics: the first falsy value, else the last one.
    def conjunction(context: Mapping[str, Any]) -> Any:
        value: Any = True
        for operand in operands:
            value = operand(context)
            if not value:
                return value
        return value

    return conjunction


def _or(operands: tuple[_Eval, ...]) -> _Eval:
    # Python semantics: the first truthy value, else the last one.
    def disjunction(context: Mapping[str, Any]) -> Any:
        value: Any = False
        for operand in operands:
            value = operand(context)
            if value:
                return value
        return value

    return disjunction


def _not(operand: _Eval) -> _Eval:
    def negation(context: Mapping[str, Any]) -> Any:
        return not operand(context)

    return negation


def _minus(operand: _Eval) -> _Eval:
    def minus(context: Mapping[str, Any]) -> Any:
        return _negate(operand(context))

    return minus


def _list(items: tuple[_Eval, ...]) -> _Eval:
    def build(context: Mapping[str, Any]) -> Any:
        return [item(context) for item in items]

    return build


def _tuple(items: tuple[_Eval, ...]) -> _Eval:
    def build(context: Mapping[str, Any]) -> Any:
        return tuple(item(context) for item in items)

    return build
