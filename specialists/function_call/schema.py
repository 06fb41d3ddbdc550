"""Function definitions in the three shapes users bring, normalised to one JSON Schema form.

Accepted shapes:

- OpenAI: ``{"type": "function", "function": {"name", "description", "parameters"}}`` or the
  flat ``{"type": "function", "name", "description", "parameters"}``;
- Anthropic: ``{"name", "description", "input_schema"}``;
- BFCL / Gorilla: ``{"name", "description", "parameters"}`` with BFCL's type names ``dict``,
  ``float``, ``tuple``, ``any`` (and Java/JavaScript type names, taken as strings).

Every shape becomes a :class:`FunctionSpec` whose ``parameters`` is plain JSON Schema, Draft
2020-12 (an ``object`` with ``properties`` and ``required``; :func:`normalize_schema` says what
changes), which is also what verification checks arguments against, with jsonschema.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

__all__ = ["FunctionSpec", "normalize_function", "normalize_schema", "schema_problems"]

_TYPE_MAP = {
    "dict": "object",
    "object": "object",
    "hashmap": "object",
    "float": "number",
    "double": "number",
    "number": "number",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
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
#: Keywords whose value is one schema, a list of schemas, or a map of names to schemas: their
#: schemas are normalised in turn. Every other keyword is kept as it is.
_ONE_SCHEMA = (
    "items", "contains", "not", "if", "then", "else", "propertyNames", "additionalProperties",
    "unevaluatedItems", "unevaluatedProperties",
)  # fmt: skip
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
#: Keys of BFCL's documents that are not JSON Schema (``optional`` restates ``required``).
_DROPPED = ("optional", "nullable")


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


def _json_type(raw: Any) -> str | None:
    """A type name as JSON Schema spells it; None for BFCL's ``any`` (no constraint). Java's
    and JavaScript's other type names (``String``, ``Character``...) are strings."""
    name = str(raw).lower()
    return None if name == "any" else _TYPE_MAP.get(name, "string")


def normalize_schema(schema: Any, where: str = "parameters") -> dict[str, Any]:
    """A BFCL/OpenAI/Anthropic parameter schema as plain JSON Schema (Draft 2020-12).

    Every keyword is kept (``minimum``, ``pattern``, ``format``, ``minItems``, ``$ref``...);
    what changes:

    - BFCL's and Java/JavaScript's type names become JSON Schema's (``dict`` -> ``object``,
      ``float`` -> ``number``, ``tuple`` -> ``array``, ``String`` -> ``string``); ``any`` drops
      the type;
    - OpenAPI's ``nullable: true`` adds ``null`` to the type;
    - a list under ``items`` (the tuple form of older drafts) becomes ``prefixItems``;
    - an object with ``properties`` lists only declared names under ``required`` and, unless
      it says otherwise, takes no other keys (``additionalProperties: false``): an argument
      the function does not declare is a mistake, as in OpenAI's strict mode;
    - an array without ``items`` gets ``items: {}``.
    """
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where}: expected a JSON Schema object, got {type(schema).__name__}")
    out: dict[str, Any] = {
        str(k): v for k, v in schema.items() if k not in _DROPPED and k not in ("type", "required")
    }
    raw_type = schema.get("type")
    types = raw_type if isinstance(raw_type, list) else [] if raw_type is None else [raw_type]
    mapped = [_json_type(t) for t in types]
    kinds = [k for k in dict.fromkeys(mapped) if k is not None]
    if schema.get("nullable") is True and kinds and "null" not in kinds:
        kinds.append("null")
    if kinds and None not in mapped:  # a list holding "any" constrains nothing
        out["type"] = kinds if len(kinds) > 1 else kinds[0]
    for key in _ONE_SCHEMA:
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            out[key] = normalize_schema(sub, f"{where}.{key}")
    if isinstance(schema.get("items"), list):  # tuple-style item lists
        del out["items"]
        out["prefixItems"] = [
            normalize_schema(s, f"{where}.items[{i}]") for i, s in enumerate(schema["items"])
        ]
    for key in _SCHEMA_LISTS:
        if key in schema:
            subs = schema[key]
            if not isinstance(subs, list):
                raise ValueError(f"{where}.{key}: expected a list of schemas")
            out[key] = [normalize_schema(s, f"{where}.{key}[{i}]") for i, s in enumerate(subs)]
    for key in _SCHEMA_MAPS:
        if key in schema:
            subs = schema[key]
            if not isinstance(subs, Mapping):
                what = "parameter schemas" if key == "properties" else "schemas"
                raise ValueError(f"{where}.{key}: expected an object of {what}")
            out[key] = {str(k): normalize_schema(v, f"{where}.{key}.{k}") for k, v in subs.items()}
    if "properties" in schema:
        out.setdefault("type", "object")
        required = schema.get("required", [])
        if not isinstance(required, list):
            raise ValueError(f"{where}.required: expected a list of parameter names")
        out["required"] = [r for r in required if r in out["properties"]]
        out.setdefault("additionalProperties", False)
    elif isinstance(schema.get("required"), list):
        out["required"] = list(schema["required"])
    if out.get("type") == "array" and "items" not in out and "prefixItems" not in out:
        out["items"] = {}
    return out


#: Normalised functions by their definition's JSON, kept: the reader asks for a request's
#: functions many times, and an agent sends the same tools with every request.
_SPECS: dict[str, FunctionSpec] = {}
_KEPT_SPECS = 1024
_SPECS_LOCK = threading.Lock()


def normalize_function(raw: Any, where: str = "function") -> FunctionSpec:
    """One function definition in any accepted shape, as a :class:`FunctionSpec`. The spec
    is shared with later calls for the same definition: read it, do not change it."""
    try:
        key = json.dumps(raw, sort_keys=True)
    except (TypeError, ValueError):  # not JSON (a set, an object): normalise it every time
        return _normalized_function(raw, where)
    spec = _SPECS.get(key)
    if spec is None:
        spec = _normalized_function(raw, where)  # a bad definition raises, and is not kept
        with _SPECS_LOCK:
            if len(_SPECS) >= _KEPT_SPECS:
                _SPECS.pop(next(iter(_SPECS)))
            _SPECS[key] = spec
    return spec


def _normalized_function(raw: Any, where: str) -> FunctionSpec:
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
    try:
        _validator(parameters)
    except ValueError as exc:
        raise ValueError(f"{where}.parameters: {exc}") from None
    return FunctionSpec(name=name.strip(), description=description.strip(), parameters=parameters)


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator for ``schema``, kept: a function's schema is checked on every call."""
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _VALIDATORS.get(key)
    if validator is None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        validator = Draft202012Validator(schema, format_checker=_FORMATS)
        if len(_VALIDATORS) >= _KEPT_VALIDATORS:
            _VALIDATORS.pop(next(iter(_VALIDATORS)))
        _VALIDATORS[key] = validator
    return validator


_FORMATS = Draft202012Validator.FORMAT_CHECKER
_VALIDATORS: dict[str, Draft202012Validator] = {}
_KEPT_VALIDATORS = 512


def _at(where: str, path: Sequence[Any]) -> str:
    return where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _messages(error: ValidationError, where: str) -> list[str]:
    """One validation error as the problems a planner (or a model) can act on."""
    at = _at(where, error.absolute_path)
    kind, expected, value = error.validator, error.validator_value, error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "required":
        missing = re.match(r"'(.+)' is a required property", error.message)
        name = missing.group(1) if missing else error.message
        return [f"{at}: missing required argument {name!r}"]
    if kind == "additionalProperties" and isinstance(value, Mapping):
        declared = schema.get("properties", {})
        patterns = list(schema.get("patternProperties", {}))
        known = ", ".join(declared) or "none"
        return [
            f"{at}: unknown argument {name!r} (known: {known})"
            for name in value
            if name not in declared and not any(re.search(p, name) for p in patterns)
        ]
    if kind == "type":
        types = expected if isinstance(expected, list) else [expected]
        return [f"{at}: expected {' or '.join(str(t) for t in types)}, got {value!r}"]
    if kind == "enum":
        return [f"{at}: {value!r} is not one of {schema.get('enum')!r}"]
    if kind == "const":
        return [f"{at}: must be {expected!r}"]
    if kind in ("anyOf", "oneOf"):
        return [f"{at}: matches none of the {kind} alternatives ({error.message})"]
    return [f"{at}: {error.message}"]


def schema_problems(value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
    """What is wrong with ``value`` under a (normalised) JSON Schema, every keyword checked
    with jsonschema's Draft 2020-12 validator, formats included; an empty list means valid.
    Each problem names where it is (``where`` and the path inside the value)."""
    validator = _validator(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.path])
    return [message for error in errors for message in _messages(error, where)]
