"""Output contracts checked with JSON Schema (Draft 2020-12, every keyword, formats too).

One compiled validator per schema is kept: compiling a schema costs far more than checking a
small output with it, and the same few schemas are checked on every call of a run.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from orchestrator._contracts import ToolInfo

__all__ = ["inline_refs", "output_problems", "schema_errors", "validator_for"]

_VALIDATORS: dict[str, Draft202012Validator] = {}
_MAX_CACHED = 1024


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """The compiled validator of `schema` (cached by the schema's canonical JSON)."""
    key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    validator = _VALIDATORS.get(key)
    if validator is None:
        if len(_VALIDATORS) >= _MAX_CACHED:
            _VALIDATORS.clear()
        validator = Draft202012Validator(
            inline_refs(schema), format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        _VALIDATORS[key] = validator
    return validator


def schema_errors(validator: Draft202012Validator, value: Any) -> list[str]:
    """Every way `value` breaks the schema, each with the path of the offending part."""
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path)))
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        if e.absolute_path
        else e.message
        for e in errors
    ]


def output_problems(output: Any, tool: ToolInfo) -> str | None:
    """Why an output does not fit the tool's contract (schema, label set), or None."""
    errors = schema_errors(validator_for(tool.output_schema), output)
    if errors:
        return "; ".join(errors[:3]) + "."
    if (
        tool.labels is not None
        and isinstance(output, dict)
        and "label" in output
        and output["label"] not in tool.labels
    ):
        return f"label {output['label']!r} is not one of: {', '.join(tool.labels)}."
    return None


_ONE = ("items", "additionalProperties", "unevaluatedItems", "unevaluatedProperties",
        "contains", "propertyNames", "not", "if", "then", "else")  # fmt: skip
_MANY = ("prefixItems", "allOf", "anyOf", "oneOf")
_NAMED = ("properties", "patternProperties", "dependentSchemas")
#: Keywords that change how references resolve: a schema using them is kept as written.
_SCOPED = ("$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef")


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with its local ``#/$defs/...`` references replaced by their targets.

    jsonschema resolves a ``$ref`` on every validation, which doubled the cost of checking
    a result; pydantic's schemas (a list of ``LabelScore``) use them. Only places that hold
    schemas are rewritten (never ``enum`` or ``const`` data). A recursive or non-local
    reference, a ``$ref`` beside other keywords, or a keyword that moves the base of
    references keeps the schema as it is: the result always validates exactly as the
    original does.
    """
    if not isinstance(schema, dict):
        return schema
    defs = schema.get("$defs", {})
    if not isinstance(defs, dict):
        return schema

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if not isinstance(node, dict):
            return node
        if any(k in node for k in _SCOPED):
            raise _KeepRefs
        if "$ref" in node:
            ref = node["$ref"]
            name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else ""
            if name in ("", ref) or set(name) & set("/~%") or name not in defs or name in seen:
                raise _KeepRefs
            if len(node) > 1:
                raise _KeepRefs
            if isinstance(defs[name], bool):
                # jsonschema reports a false schema reached directly without the path to it,
                # and through a reference with it: kept, the messages stay the same.
                raise _KeepRefs
            return walk(defs[name], (*seen, name))
        out = {k: v for k, v in node.items() if k != "$defs"}
        for key in _ONE:
            if key in out:
                out[key] = walk(out[key], seen)
        for key in _MANY:
            if isinstance(out.get(key), list):
                out[key] = [walk(v, seen) for v in out[key]]
        for key in _NAMED:
            if isinstance(out.get(key), dict):
                out[key] = {name: walk(v, seen) for name, v in out[key].items()}
        if "$defs" in node and node is not schema:
            raise _KeepRefs  # nested definitions: their own references are not rewritten
        return out

    try:
        inlined: dict[str, Any] = walk(schema, ())
    except _KeepRefs:
        return schema
    # A reference left in a place not rewritten above would now point nowhere.
    return schema if '"$ref"' in json.dumps(inlined) else inlined


class _KeepRefs(Exception):
    """A reference that cannot be inlined: validate against the schema as written."""
