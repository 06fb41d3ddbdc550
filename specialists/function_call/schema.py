"""Function definitions in the three shapes users bring, normalised to one JSON Schema form.

Accepted shapes:

- OpenAI: ``{"type": "function", "function": {"name", "description", "parameters"}}`` or the
  flat ``{"type": "function", "name", "description", "parameters"}``;
- Anthropic: ``{"name", "description", "input_schema"}``;
- BFCL / Gorilla: ``{"name", "description", "parameters"}`` with BFCL's type names ``dict``,
  ``float``, ``tuple``, ``any`` (and Java/JavaScript type names, taken as strings).

Every shape becomes a :class:`FunctionSpec` whose ``parameters`` is plain JSON Schema (an
``object`` with ``properties`` and ``required``), which is also what verification checks
arguments against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FunctionSpec", "normalize_function", "normalize_schema", "schema_problems"]

_TYPE_MAP = {
    "dict": "object",
    "object": "object",
    "float": "number",
    "double": "number",
    "number": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "string": "string",
    "str": "string",
    "char": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "arraylist": "array",
    "null": "null",
}
# Keys kept from a BFCL/OpenAI parameter description; others (``optional``, ``format`` hints
# that are not JSON Schema) are dropped.
_KEPT = ("description", "enum", "default", "minimum", "maximum", "pattern", "format", "const")


@dataclass(frozen=True)
class FunctionSpec:
    """One callable function: its name, description and JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        props: dict[str, dict[str, Any]] = self.parameters.get("properties", {})
        return props


def normalize_schema(schema: Any, where: str = "parameters") -> dict[str, Any]:
    """A BFCL/OpenAI/Anthropic parameter schema as plain JSON Schema."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where}: expected a JSON Schema object, got {type(schema).__name__}")
    out: dict[str, Any] = {k: schema[k] for k in _KEPT if k in schema}
    raw_type = schema.get("type")
    if isinstance(raw_type, list):
        types = [_TYPE_MAP.get(str(t).lower(), "string") for t in raw_type]
        out["type"] = types if len(types) > 1 else types[0]
    elif raw_type is not None and str(raw_type).lower() != "any":
        out["type"] = _TYPE_MAP.get(str(raw_type).lower(), "string")
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            out[combinator] = [
                normalize_schema(s, f"{where}.{combinator}[{i}]")
                for i, s in enumerate(schema[combinator])
            ]
    if "properties" in schema:
        props = schema["properties"]
        if not isinstance(props, Mapping):
            raise ValueError(f"{where}.properties: expected an object of parameter schemas")
        out["type"] = "object"
        out["properties"] = {
            str(k): normalize_schema(v, f"{where}.properties.{k}") for k, v in props.items()
        }
        required = schema.get("required", [])
        if not isinstance(required, list):
            raise ValueError(f"{where}.required: expected a list of parameter names")
        out["required"] = [r for r in required if r in out["properties"]]
    if "items" in schema:
        items = schema["items"]
        out["items"] = (
            normalize_schema(items, f"{where}.items")
            if isinstance(items, Mapping)
            else {}  # tuple-style item lists: any item
        )
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {}
    if "additionalProperties" in schema and isinstance(schema["additionalProperties"], bool):
        out["additionalProperties"] = schema["additionalProperties"]
    return out


def normalize_function(raw: Any, where: str = "function") -> FunctionSpec:
    """One function definition in any accepted shape, as a :class:`FunctionSpec`."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object with 'name' and 'parameters'")
    body: Mapping[str, Any] = raw
    if isinstance(raw.get("function"), Mapping):  # OpenAI chat-completions tool
        body = raw["function"]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.name: missing; every function needs a non-empty 'name'")
    description = body.get("description") or ""
    if not isinstance(description, str):
        raise ValueError(f"{where}.description: expected a string")
    schema = body.get("parameters", body.get("input_schema"))
    if schema is None:
        schema = {"type": "object", "properties": {}}
    parameters = normalize_schema(schema, f"{where}.parameters")
    if parameters.get("type") != "object":
        raise ValueError(
            f"{where}.parameters: the arguments must be an object schema "
            "(type 'object' or BFCL's 'dict' with 'properties')"
        )
    parameters.setdefault("properties", {})
    parameters.setdefault("required", [])
    return FunctionSpec(name=name.strip(), description=description.strip(), parameters=parameters)


_PY_CHECK: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _matches_type(value: Any, type_name: str) -> bool:
    kinds = _PY_CHECK.get(type_name)
    if kinds is None:
        return True
    if isinstance(value, bool) and type_name in ("integer", "number"):
        return False
    if type_name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, kinds)


def schema_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    """What is wrong with ``value`` under a normalised schema (types, enum, required, unknown
    keys); an empty list means valid. A small validator, so that verification needs no extra
    dependency; it covers the keywords :func:`normalize_schema` keeps."""
    problems: list[str] = []
    declared = schema.get("type")
    if declared is not None:
        types = declared if isinstance(declared, list) else [declared]
        if not any(_matches_type(value, t) for t in types):
            problems.append(f"{where}: expected {' or '.join(types)}, got {value!r}")
            return problems
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: must be {schema['const']!r}")
    if isinstance(value, dict) and "properties" in schema:
        props: Mapping[str, Any] = schema["properties"]
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: missing required argument {name!r}")
        for name, item in value.items():
            if name in props:
                problems += schema_problems(item, props[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is not True:
                known = ", ".join(props) or "none"
                problems.append(f"{where}: unknown argument {name!r} (known: {known})")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{where}[{i}]")
    for combinator in ("anyOf", "oneOf"):
        options = schema.get(combinator)
        if options and all(schema_problems(value, o, where) for o in options):
            problems.append(f"{where}: matches none of the {combinator} alternatives")
    return problems
