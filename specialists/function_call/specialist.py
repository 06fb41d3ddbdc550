"""The ``function_call`` specialist: which function(s) a request calls, with which arguments.

How it works (local CPU backend):

1. **Choose.** The bundled sentence encoder compares the request (and each of its clauses) with
   every function's name and description; a logistic gate fitted on tuning data (the first
   halves of BFCL's files and the tune part of the project's assistant requests) turns that,
   the function's name words the request uses, its numbers, whether the function's name or
   description holds what the request asks about, and whether the answer passes verification
   into a probability. A request that no answer could lift over the threshold gets no call
   at once; otherwise the gate weighs the answer once it is verified, and an answer that
   cannot be traced to the request falls below it more easily. Below the threshold the answer
   is an explicit "no function applies"; a clause that clearly matches another function adds
   a call. In a chat, a turn that only changes the request before it
   ("and for tomorrow?") repeats that request's call with the change
   (:mod:`~orchestrator.specialists.function_call.follow_ups`).
2. **Count.** Lists in the request ("Paris, Rome and Berlin", "10, 20 and 30 years"), named
   choices ("in celsius and fahrenheit") and requests that go on with "also"/"another" give
   the number of calls; the request is then cut into one version per call.
3. **Fill.** By default (``filler='extract'``) the values are read straight from the request
   (:mod:`~orchestrator.specialists.function_call.arguments`): numbers, names, quoted strings,
   dates, formulas and lists are scored against each parameter from the words around them and
   assigned jointly. On BFCL this is both more accurate and about twenty times faster than
   letting the bundled SmolLM2-135M write the arguments.
   With a generative model (``filler='generate'``, or ``'hybrid'`` for what reading cannot
   settle) a JSON Schema for the arguments is built from the request (strings limited to spans
   of it, numbers to its numbers, enums kept), and the model writes under a grammar from that
   schema, so the output always parses and validates. The model is a
   :class:`~orchestrator.specialists.backends.generation.JSONGenerator`: the bundled GGUF through
   llama.cpp, or a vLLM server that enforces the same schema (``use_generator``; attaching
   one makes ``filler='auto'`` generate).
4. **Trust.** :meth:`FunctionCallSpecialist.verify` checks every call against the function's
   JSON Schema and traces every value to the conversation; the confidence is the probability
   that the answer is right, fitted on tuning data from the gate's probability and whether
   the answer verifies, with the threshold at which the kept tuning answers were 95% right.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.specialists._base import Prediction, Specialist
from orchestrator.specialists.backends.encoder import TextEncoder, bundled_encoder
from orchestrator.specialists.backends.entities import EntityRecognizer
from orchestrator.specialists.backends.generation import ChatMessage, JSONGenerator, ToolCaller
from orchestrator.specialists.function_call.arguments import (
    BRACKETS,
    DATES,
    NUMBER_GROUPS,
    STOP_WORDS,
    assign_arguments,
    calendar_name,
    chosen_probabilities,
    date_format,
    parse_date,
    read_lists,
)
from orchestrator.specialists.function_call.dates import (
    first_moment,
    moment_kind,
    moment_spans,
    written_as,
)
from orchestrator.specialists.function_call.follow_ups import (
    all_optional,
    earlier_turns,
    goes_on,
    joined_turns,
)
from orchestrator.specialists.function_call.grounding import Conversation, grounding_problems
from orchestrator.specialists.function_call.native import (
    parsed_arguments,
    tool_definitions,
    tool_messages,
)
from orchestrator.specialists.function_call.numbers import NUMBER
from orchestrator.specialists.function_call.places import in_city_state_format
from orchestrator.specialists.function_call.request_parts import (
    EDGE,
    LIST_SEP,
    NEXT_REQUEST,
    NUM_LIST,
    QUOTED,
    WORD_LISTS,
    has_value,
    list_items,
    name_lists,
    names_in,
    number_mentions,
    numbers_in,
    one_each,
    ordinal_parts,
    pair_lists,
)
from orchestrator.specialists.function_call.schema import (
    FunctionSpec,
    normalize_function,
    schema_problems,
)

__all__ = [
    "ChatTurn",
    "FunctionCallInput",
    "FunctionCallOptions",
    "FunctionCallOutput",
    "FunctionCallSpecialist",
    "ToolCall",
]


class ChatTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class FunctionCallInput(BaseModel):
    """A request and the functions that may serve it."""

    model_config = ConfigDict(extra="forbid")
    request: str | list[ChatTurn] = Field(
        description="The user's request: a string, or chat messages (the last user message is "
        "the request, earlier ones are context)."
    )
    functions: list[dict[str, Any]] = Field(
        max_length=128,
        description="Function definitions: OpenAI or Anthropic tool definitions, or BFCL "
        "function documents (name, description, JSON Schema of the parameters).",
    )
    now: datetime | None = Field(
        default=None,
        description="The moment the request is made, which relative dates ('tomorrow at "
        "7pm') are read against; the current time when not given.",
    )

    @field_validator("request")
    @classmethod
    def _has_user_text(cls, value: str | list[ChatTurn]) -> str | list[ChatTurn]:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("request: empty; pass the user's request as text")
        elif not any(t.role == "user" and t.content.strip() for t in value):
            raise ValueError("request: no user message with content among the chat messages")
        return value

    @field_validator("functions")
    @classmethod
    def _valid_functions(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names: set[str] = set()
        for i, raw in enumerate(value):
            spec = normalize_function(raw, f"functions[{i}]")
            if spec.name in names:
                raise ValueError(f"functions[{i}].name: {spec.name!r} is defined twice")
            names.add(spec.name)
        return value

    def specs(self) -> list[FunctionSpec]:
        return [normalize_function(f, f"functions[{i}]") for i, f in enumerate(self.functions)]

    def text(self) -> str:
        """The request proper: the last user message."""
        if isinstance(self.request, str):
            return self.request.strip()
        return next(t.content for t in reversed(self.request) if t.role == "user").strip()

    def context(self) -> str:
        """All user text, which argument values may be taken from."""
        if isinstance(self.request, str):
            return self.request
        return joined_turns(t.content for t in self.request if t.role == "user")

    def conversation(self) -> str:
        """Every turn's text: what verification traces argument values to."""
        if isinstance(self.request, str):
            return self.request
        return "\n".join(t.content for t in self.request)

    def moment(self) -> datetime:
        return self.now if self.now is not None else datetime.now()


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="The function to call.")
    arguments: dict[str, Any] = Field(description="Its arguments, valid against its schema.")


class FunctionCallOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calls: list[ToolCall] = Field(description="The calls to make, in order; empty if none.")
    no_call: bool = Field(description="True when no function applies to the request.")
    reason: str = Field(default="", description="Why no function applies, when none does.")


class FunctionCallOptions(BaseModel):
    """Options of the function_call specialist."""

    model_config = ConfigDict(extra="forbid")
    relevance_threshold: float = Field(
        default=0.63,
        ge=0.0,
        le=1.0,
        description="Probability (of the relevance gate) below which no function applies; "
        "the lowest at which every irrelevant tuning source the gate was fitted on kept 90% "
        "of its questions without a call.",
    )
    clause_threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Similarity a clause of the request needs with a second function to add a "
        "call of that function; unset, the relevance gate decides for the clause as it does "
        "for the whole request.",
    )
    max_calls: int = Field(default=8, ge=1, le=32, description="At most this many calls.")
    max_new_tokens: int = Field(
        default=384, ge=16, le=4096, description="Token budget of one generation."
    )
    model_path: str | None = Field(
        default=None,
        description="The GGUF model of the local backend: a file path, or "
        "hf://OWNER/REPO/FILE.gguf, downloaded once into the Hugging Face cache (default: the "
        "bundled SmolLM2-135M).",
    )
    n_threads: int = Field(
        default=1, ge=1, le=64, description="llama.cpp CPU threads (1 suits a shared CPU)."
    )
    filler: Literal["auto", "extract", "hybrid", "generate", "tools"] = Field(
        default="auto",
        description="How arguments are filled: 'extract' reads every value straight from the "
        "request (no generative model; the most accurate and fastest with the bundled "
        "SmolLM2-135M); 'generate' lets the generative model write them all under the schema; "
        "'hybrid' reads what it can settle and lets the model choose among the few best "
        "candidates for the rest; 'tools' hands the whole conversation and the functions to "
        "the local GGUF model's tool calling (llama.cpp's chatml-function-calling), which "
        "decides itself whether any applies (no relevance gate; for a capable model set with "
        "model_path); 'auto' is 'generate' when a generator was attached (a vLLM server, say) "
        "and 'extract' otherwise.",
    )
    margin: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="hybrid: how far a read value must score above the runner-up to be taken "
        "without asking the generative model.",
    )


# -- reading values out of the request ----------------------------------------------------

_STOP = STOP_WORDS


def spans_in(text: str, *, max_words: int = 5, limit: int = 48) -> list[str]:
    """Candidate string values: quoted strings and word n-grams of the text, without leading
    or trailing stop words, most specific (quoted, capitalised, longer) first."""
    quoted = [q.strip() for q in QUOTED.findall(text) if q.strip() and "\\" not in q]
    tokens = text.split()
    ranked: dict[str, float] = {}
    for q in quoted:
        ranked[q] = 100.0 + len(q)
    for i in range(len(tokens)):
        for j in range(i + 1, min(len(tokens), i + max_words) + 1):
            words = tokens[i:j]
            span = " ".join(words).strip(EDGE)
            if not span or len(span) > 120 or '"' in span or "\\" in span:
                continue  # quotes inside a value: the quoted part is a candidate of its own
            first = words[0].strip(EDGE)
            last = words[-1].strip(EDGE)
            if first.lower() in _STOP and not first[:1].isupper():
                continue
            if last.lower() in _STOP:
                continue
            if any(w.endswith((".", "?", "!", ";")) for w in words[:-1]):
                continue  # crosses a sentence
            score = sum(1.0 for w in words if w[:1].isupper() or any(c.isdigit() for c in w))
            score += 0.2 * len(words)
            ranked.setdefault(span, score)
    ordered = sorted(ranked, key=lambda s: -ranked[s])
    return ordered[:limit]


def _unrepeated(args: dict[str, Any]) -> dict[str, Any]:
    """A small model repeats itself; a generated list rarely holds a value twice."""
    return {
        k: [x for i, x in enumerate(v) if x not in v[:i]] if isinstance(v, list) else v
        for k, v in args.items()
    }


def _distinct(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls without repeats: a grammar that asks for more calls than the request holds
    makes a small model write the same call again, and a repeated call is never meant."""
    seen: set[str] = set()
    kept = []
    for call in calls:
        key = json.dumps(call, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            kept.append(call)
    return kept


# A name of several capitalised words ("Natural History Museum", "Bank of America").
_PROPER_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'-]*)+")


def _named_choices(text: str, choices: Sequence[Any]) -> list[Any]:
    """The choices the request names: exactly, or by the stems of all their words
    ("disabled access" for "Disabled Access"; "vegetarian" for "Vegetarian"). A one-word
    choice inside a longer proper name is not named by it ("history" in "Natural History
    Museum")."""
    outside = _PROPER_NAME.sub(lambda m: " " * len(m[0]), text)
    words_of = {text: _words(text), outside: _words(outside)}

    def named(c: str) -> bool:
        where = text if len(c.split()) > 1 else outside
        words = _words(c)
        return _mentions(where, c) or (
            bool(words) and all(_stem_in(w, words_of[where]) for w in words)
        )

    return [c for c in choices if isinstance(c, str) and named(c)]


# Verbs and nouns that many function names share; they say little about which one applies.
_GENERIC = frozenset(
    re.findall(
        r"\S+",
        "calculate get find compute determine retrieve search fetch create check info details "
        "data information list estimate lookup query api function tool service make generate calc "
        "update total",
    )
)
#: Confidence model over confidence_inputs() (weights, bias) and the acceptance threshold;
#: fitted by benchmarks/fit_function_call_confidence.py on tuning data only.
_CONFIDENCE = (0.1275, 3.0144, -0.12, 0.966, -3.1652, 0.4777, 1.3765, -1.4549, -1.5851)
_ACCEPT = 0.836
#: How close in meaning (the encoder's cosine) a word of a follow-up must be to a value of the
#: call before it to replace it: "bedroom" for "kitchen" scores 0.55, "Berlin" for "Paris"
#: 0.56, while the words of follow-ups that change something else score at most 0.27 against
#: the values they leave alone (the tune part's conversations).
_ANALOGUE = 0.45
#: Values of at most this many words are swapped for an analogue ("living room", "New York").
_ANALOGUE_WORDS = 3
#: Relevance gate over gate_inputs() (weights, bias), fitted by
#: benchmarks/fit_function_call_gate.py on the first halves of BFCL's files and the tune part
#: of the assistant requests (each source weighted equally); threshold in the options.
_GATE = (4.961, 2.0976, 1.9076, 1.6894, 2.1963, 2.2072, 1.7247, -6.3388)
#: The readings of a request that each say how many calls it asks for (:meth:`call_counts`).
_COUNT_READINGS = (
    "choices", "groups", "number_list", "numbers_per_parameter", "name_list", "pair_list", "parts",
)  # fmt: skip


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 2}


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text.lower()) is not None


def _name_words(name: str) -> set[str]:
    parts = re.split(r"[_.\-\s]+|(?<=[a-z])(?=[A-Z])", name)
    return {p.lower() for p in parts if len(p) > 2 and p.lower() not in _STOP}


#: Functions needed before the best one's standing among the others is read (with two the
#: margin says it all).
_STANDOUT_FUNCTIONS = 3
#: Scale of the standout: how many standard deviations of the others' similarities.
_STANDOUT_SCALE = 5.0


def _standing(row: np.ndarray) -> tuple[float, float, float]:
    """The best similarity of a row, how far it stands above the runner-up (0 alone), and how
    far above the others it stands in their own spread (0 with fewer than three functions).
    The last needs no absolute level: a short request ("is it sunny in Madrid?") has low
    similarities with every function, yet one of them stands far above the rest."""
    ordered = np.sort(row)[::-1]
    margin = float(ordered[0] - ordered[1]) if len(ordered) > 1 else 0.0
    standout = 0.0
    if len(ordered) >= _STANDOUT_FUNCTIONS:
        others = ordered[1:]
        spread = float(others.std()) + 1e-6
        standout = float(ordered[0] - others.mean()) / spread / _STANDOUT_SCALE
    return float(ordered[0]), margin, standout


def _asked_words(text: str, count: int = 3) -> list[str]:
    """The first words of a request that are neither stop words nor numbers: what it asks
    about ("What is the *standard deviation* ...", "*Book* a *table* ...")."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [w for w in words if w not in _STOP and len(w) > 2 and not w.isdigit()][:count]


_SCALAR = ("string", "integer", "number")
# A formula with a variable ("3x^2 + 2x - 1", "y = 2*x + 3"): one value, not several numbers.
_MATH = re.compile(
    r"(?:[a-z]\s*=\s*)?[\w.]*[a-z]\^?\d*(?:\s*[-+*/^]\s*[\w.^()]+)+|\b\d+[a-z]\^\d+\b"
)


_NEGATIVE_FLAGS = frozenset({"avoid", "exclude", "skip", "disable", "hide", "ignore", "omit", "no"})


def _flag(text: str, name: str) -> bool:
    """The value of a flag the request speaks of: true, unless it is negated ("without
    traffic", "don't include tolls", "with tolls excluded"); for a flag named for a negative
    ("avoid_tolls"), a negated mention ("without toll roads", "toll roads avoided") sets it."""
    words = _name_words(name)
    stems = "|".join(re.escape(w.rstrip("s")[:5]) for w in words) or re.escape(name)
    pattern = (
        rf"\b(?:no|not|without|exclud\w*|don't|do not|never|skip|avoid\w*)\b\W+"
        rf"(?:\w+\W+){{0,3}}(?:{stems})"
    )
    after = rf"(?:{stems})\w*\W+(?:\w+\W+){{0,2}}(?:avoided|excluded|skipped|disabled)\b"
    negated = re.search(f"{pattern}|{after}", text, re.IGNORECASE) is not None
    negative = bool(words & _NEGATIVE_FLAGS) or name.lower().startswith("no_")
    return negated if negative else not negated


_DIMENSIONS = {
    "length": "mm cm km m meter meters metre metres millimeter millimeters centimeter "
    "centimeters kilometer kilometers inch inches ft feet foot yard yards mile miles",
    "mass": "mg g kg gram grams kilogram kilograms lb lbs pound pounds ounce ounces oz",
    "volume": "l ml liter liters litre litres",
}
_DIMENSION_OF = {u: d for d, units in _DIMENSIONS.items() for u in units.split()}
_UNIT_AFTER_NUMBER = re.compile(
    r"\d(?:\.\d+)?\s?((?:" + "|".join(sorted(_DIMENSION_OF, key=len, reverse=True)) + r")\b"
    r"(?:[/^\u00b2\u00b3][\w\u00b2\u00b3^/]*)?)",
    re.IGNORECASE,
)
_DEFAULT_UNIT = re.compile(r"default(?:s)?(?:\s+is|\s+to)?\s*:?\s*'?([\w/\u00b2\u00b3^]+)", re.I)


def written_unit(text: str, description: str = "") -> str | None:
    """The unit of measure written right after the request's numbers when they all share one
    ("a radius of 5cm ... of 10cm"); None when there is none, or several ("45 kg ... 15 m³"),
    or when the parameter's default is of another kind (the default "km/h" of a velocity is not
    a length: "50 kilometers" does not set it)."""
    units = {m.group(1) for m in _UNIT_AFTER_NUMBER.finditer(text)}
    if len(units) != 1:
        return None
    unit = units.pop()
    default = _DEFAULT_UNIT.search(description)
    if default and _DIMENSION_OF.get(default.group(1).lower()) != _DIMENSION_OF.get(unit.lower()):
        return None
    return unit


def _unit_value(name: str, schema: Mapping[str, Any], text: str) -> str | None:
    """For a parameter named for a unit, the unit the request writes with its numbers."""
    if "unit" not in name.lower():
        return None
    return written_unit(text, str(schema.get("description", "")))


def _stem_in(word: str, text_words: set[str]) -> bool:
    stem = word.rstrip("s")[:5] or word
    return any(w.startswith(stem) for w in text_words)


_ALLOWED = re.compile(
    r"(?:allowed values|one of|options|possible values|can be|either)\s*(?:are|:|is)?\s*(.+)",
    re.IGNORECASE,
)


_LISTED_CHOICES = re.compile(r"\((?!e\.g\.|i\.e\.)([a-z]+(?:,\s*(?:or\s+)?[a-z]+){2,})\)")
_EXPLAINED_CHOICES = re.compile(r"'([^']{1,30})' for\b")


def _described_choices(schema: Mapping[str, Any]) -> list[str]:
    """Choices listed in a description ("Allowed values: 'a', 'b'")."""
    description = str(schema.get("description", ""))
    match = _ALLOWED.search(description)
    if not match:
        # "(walk, bike, transit, drive)" or "'now' for current, 'weekend' for the weekend"
        listed = _LISTED_CHOICES.search(description)
        if listed:
            return [c.strip() for c in listed.group(1).split(",")]
        explained = _EXPLAINED_CHOICES.findall(description)
        return explained if len(explained) >= 2 else []
    return [
        q for q in re.findall(r"'([^']{1,60})'|\"([^\"]{1,60})\"", match.group(1)) for q in q if q
    ]


# -- the specialist ------------------------------------------------------------------------


def _content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in _STOP]


def _stems(text: str) -> set[str]:
    # Five letters stand for a word's stem well enough here ("bookings", "booked" -> "booke"
    # and "book" apart is rare) and need no tagger.
    return {w[:5] for w in _content_words(text)}


def _without_moments(text: str) -> str:
    """The text with its dates and times blanked out, offsets kept."""
    for start, end in moment_spans(text):
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def unexplained_share(
    text: str, calls: Sequence[ToolCall], functions: Sequence[Mapping[str, Any]]
) -> float:
    """The share of the request's content words (dates and times aside) that neither a
    value of the calls nor the definitions of the functions offered (names, descriptions,
    parameters) account for; 0 for no calls."""
    if not calls:
        return 0.0
    words = _content_words(_without_moments(text))
    if not words:
        return 0.0
    known = _stems(json.dumps([c.arguments for c in calls])) | _stems(json.dumps(functions))
    return sum(1 for w in words if w[:5] not in known) / len(words)


class FunctionCallSpecialist(
    Specialist[FunctionCallInput, FunctionCallOutput, FunctionCallOptions]
):
    name: ClassVar[str] = "function_call"
    description: ClassVar[str] = (
        "Tool calling: given a request and function definitions (JSON Schema), returns the "
        "call(s) to make with their arguments, or says that no function applies. "
        "Input: {request, functions}."
    )
    summary_fields: ClassVar[tuple[str, ...] | None] = ("calls", "no_call")

    def __init__(
        self,
        options: FunctionCallOptions | Mapping[str, Any] | None = None,
        *,
        encoder: TextEncoder | None = None,
        generator: JSONGenerator | None = None,
    ) -> None:
        super().__init__(options)
        self._encoder = encoder
        self._generator = generator
        self._attached = generator is not None
        self._tool_caller: ToolCaller | None = None
        self._load_lock = threading.Lock()
        self._entities = EntityRecognizer()

    @property
    def model_id(self) -> str:
        if self._tool_caller is not None:
            return f"{self.name}:{self._tool_caller.model_id}+tools"
        if self.filler == "tools":
            return f"{self.name}:{self.options.model_path or 'bundled-gguf'}+tools"
        encoder = self._encoder.model_id if self._encoder else "bundled-encoder"
        if self.filler == "extract":
            return f"{self.name}:{encoder}+reader"
        generator = self._generator.model_id if self._generator else "bundled-gguf"
        return f"{self.name}:{encoder}+{generator}"

    def use_generator(self, generator: JSONGenerator) -> None:
        """Fill arguments with another engine (for example a vLLM server)."""
        self._generator = generator
        self._attached = True

    def use_tool_caller(self, caller: ToolCaller) -> None:
        """Hand the functions to a model with native tool calling (a vLLM server started
        with ``--enable-auto-tool-choice``, say): it reads the whole conversation and makes
        its own no-call decision; nothing is read from the request or gated here."""
        self._tool_caller = caller

    @property
    def filler(self) -> str:
        """The filler in use ('auto' resolved)."""
        if self.options.filler != "auto":
            return self.options.filler
        return "generate" if self._attached else "extract"

    def close(self) -> None:
        for engine in (self._generator, self._tool_caller):
            close = getattr(engine, "close", None)
            if callable(close):
                close()

    def load(self) -> None:
        if self._tool_caller is not None:
            return  # the model lives on its server; verification needs no model
        with self._load_lock:
            if self.filler == "tools":
                from orchestrator.specialists.backends.llama import LlamaToolCaller

                self._tool_caller = LlamaToolCaller(
                    self.options.model_path, n_threads=self.options.n_threads
                )
                return
            if self._encoder is None:
                self._encoder = bundled_encoder()
            self._entities.load()
            if self._generator is None and self.filler != "extract":
                from orchestrator.specialists.backends.llama import LlamaJSONGenerator

                self._generator = LlamaJSONGenerator(
                    self.options.model_path, n_threads=self.options.n_threads
                )

    # -- choosing functions --------------------------------------------------------------
    @staticmethod
    def function_text(spec: FunctionSpec) -> str:
        words = " ".join(re.split(r"[_.\-]+|(?<=[a-z])(?=[A-Z])", spec.name)).strip()
        return f"{words}: {spec.description}"[:1000]

    def similarities(self, texts: Sequence[str], specs: Sequence[FunctionSpec]) -> np.ndarray:
        return self._similarity(texts, [self.function_text(s) for s in specs])

    def clauses(self, text: str) -> list[str]:
        """The parts of a request that may each ask for something else: split at sentence
        ends, at words that go on to a next task ("then", "also", "plus"...), and at an
        "and" that opens a clause of its own ("lock the door and turn off the lights")."""
        parts = re.split(
            r"(?<=[.?!;])\s+|,?\s+\b(?:and then|then|also|additionally|afterwards|as well as|"
            r"after that|plus)\b,?\s+",
            text,
            flags=re.IGNORECASE,
        )
        pieces: list[str] = []
        for part in parts:
            if not part:
                continue
            start = 0
            for at in self._entities.clause_breaks(part):
                pieces.append(part[start:at].rstrip(" ,"))
                start = at + len("and")
            pieces.append(part[start:])
        return [p.strip() for p in pieces if p and len(p.strip()) > 3]

    @staticmethod
    def gate_inputs(
        text: str,
        spec: FunctionSpec,
        similarity: float,
        *,
        margin: float = 0.0,
        standout: float = 0.0,
        verified: bool = True,
    ) -> list[float]:
        """What the relevance gate weighs: the encoder similarity of the request and the
        function; the share of the function's specific name words that the request uses;
        whether the request holds enough numbers for the numeric required parameters; the
        share of the first words the request asks about ("the *standard deviation* of ...")
        that the function's name or description holds; how far the function stands out from
        the runner-up among several (``margin``, 0 with one function) and above all the others
        in their spread (``standout``, 0 with fewer than three); and whether the answer it
        gives passes verification (every value traced to the request, valid against the
        schema). Verification comes last: it is the input weighed again once known."""
        text_words = _words(text)
        name_words = _name_words(spec.name)
        specific = [w for w in name_words if w not in _GENERIC] or list(name_words)
        overlap = float(np.mean([_stem_in(w, text_words) for w in specific])) if specific else 0.0
        numeric = sum(
            1 for p in spec.required if spec.properties[p].get("type") in ("integer", "number")
        )
        coverage = min(1.0, len(numbers_in(text)) / numeric) if numeric else 1.0
        asked = _asked_words(text)
        own = name_words | _words(spec.description)
        named = float(np.mean([_stem_in(w, own) for w in asked])) if asked else 0.0
        return [similarity, overlap, coverage, named, margin, standout, float(verified)]

    @staticmethod
    def gate_probability(inputs: Sequence[float]) -> float:
        """The gate's logistic model over :meth:`gate_inputs` (``_GATE``)."""
        *weights, bias = _GATE
        z = float(np.dot(weights, inputs)) + bias
        return float(1.0 / (1.0 + np.exp(-z)))

    def relevance(
        self,
        text: str,
        spec: FunctionSpec,
        similarity: float,
        margin: float = 0.0,
        standout: float = 0.0,
    ) -> float:
        """The probability that ``spec`` serves the request, before its answer is known:
        the larger of the gate's probabilities with and without a verified answer, so that a
        request is dropped early only when no answer could lift it over the threshold."""
        inputs = self.gate_inputs(text, spec, similarity, margin=margin, standout=standout)
        return self._before_answer(inputs)

    def _before_answer(self, inputs: Sequence[float]) -> float:
        """:meth:`relevance` from the gate's inputs already known."""
        return max(self.gate_probability(inputs), self.gate_probability([*inputs[:-1], 0.0]))

    def _gate(
        self, text: str, specs: Sequence[FunctionSpec]
    ) -> tuple[float, int, list[str], np.ndarray, list[float]]:
        """The gate's view of a request: the probability that a function serves it (before
        its answer is known), that function, the request's clauses, their similarities with
        every function, and the gate's inputs for the text (the whole request, or the
        clause) that gave the probability."""
        clauses = self.clauses(text)
        sims = self.similarities([text, *clauses], specs)
        best = int(sims[0].argmax())
        similarity, margin, standout = _standing(sims[0])
        inputs = self.gate_inputs(text, specs[best], similarity, margin=margin, standout=standout)
        relevance = self._before_answer(inputs)
        # A request of several parts applies when one part does: a long preamble ("I am
        # planning a trip ...") dilutes the whole request's similarity, not the part's.
        if len(clauses) > 1:
            for c, clause in enumerate(clauses, start=1):
                f = int(sims[c].argmax())
                similarity, margin, standout = _standing(sims[c])
                part_inputs = self.gate_inputs(
                    clause, specs[f], similarity, margin=margin, standout=standout
                )
                part = self._before_answer(part_inputs)
                if part > relevance:
                    relevance, best, inputs = part, f, part_inputs
        return relevance, best, clauses, sims, inputs

    def gate_features(self, item: FunctionCallInput) -> list[float]:
        """The gate's inputs for the request's best function and part, as :meth:`choose`
        weighs them before the answer is known (verification assumed passed)."""
        self.ensure_loaded()
        return self._gate(item.text(), item.specs())[4]

    def choose(
        self, item: FunctionCallInput, specs: Sequence[FunctionSpec]
    ) -> tuple[list[tuple[FunctionSpec, str]], float, FunctionSpec, list[float]]:
        """The functions to call, each with the part of the request it serves; the
        probability that the best function applies (before the answer is known); that
        function; and the gate's inputs, to weigh again once the answer is verified."""
        text = item.text()
        relevance, best, clauses, sims, inputs = self._gate(text, specs)
        if relevance < self.options.relevance_threshold:
            return [], relevance, specs[best], inputs
        chosen: dict[int, list[str]] = {best: []}
        if len(specs) > 1 and len(clauses) > 1:
            for c, clause in enumerate(clauses, start=1):
                row = sims[c]
                f = int(row.argmax())
                if f != best and self._clause_calls(clause, specs[f], row):
                    chosen.setdefault(f, []).append(clause)
                else:
                    chosen[best].append(clause)
        if len(chosen) == 1:
            return [(specs[best], text)], relevance, specs[best], inputs
        result = [(specs[f], " ".join(parts) or text) for f, parts in sorted(chosen.items())]
        return result, relevance, specs[best], inputs

    def _clause_calls(self, clause: str, spec: FunctionSpec, row: np.ndarray) -> bool:
        """Whether a clause of the request calls ``spec`` besides the best function: the
        relevance gate accepts the clause for it (``row``: the clause's similarities with
        every function), or, with ``clause_threshold`` set, its similarity reaches that."""
        if self.options.clause_threshold is not None:
            return float(row.max()) >= self.options.clause_threshold
        similarity, margin, standout = _standing(row)
        inputs = self.gate_inputs(clause, spec, similarity, margin=margin, standout=standout)
        return self.gate_probability(inputs) >= self.options.relevance_threshold

    # -- building the argument schema ----------------------------------------------------
    def value_schema(
        self, schema: Mapping[str, Any], text: str, spans: list[str], numbers: list[int | float]
    ) -> dict[str, Any]:
        """The schema one value must follow, narrowed to what the request contains."""
        if schema.get("enum"):
            mentioned = [e for e in schema["enum"] if isinstance(e, str) and _mentions(text, e)]
            if not mentioned:  # a choice named by another form of its word: "in detail"
                words = _words(text)
                mentioned = [
                    e
                    for e in schema["enum"]
                    if isinstance(e, str)
                    and len(e) > 4
                    and " " not in e
                    and _stem_in(e.lower(), words)
                ]
            return {"enum": mentioned or list(schema["enum"])}
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "string")
        if kind == "boolean":
            return {"type": "boolean"}
        if kind == "integer":
            ints = [int(n) for n in numbers if float(n).is_integer()]
            return {"enum": ints} if ints else {"type": "integer"}
        if kind == "number":
            return {"enum": list(numbers)} if numbers else {"type": "number"}
        if kind == "array":
            items = schema.get("items") or {}
            item_schema = self.value_schema(items, text, spans, numbers) if items else {}
            if not item_schema:
                item_schema = {"enum": spans} if spans else {"type": "string"}
            most = min(12, len(item_schema.get("enum", ())) or 12)
            return {"type": "array", "items": item_schema, "minItems": 1, "maxItems": most}
        if kind == "object":
            props = schema.get("properties")
            if not props:
                return {"type": "object"}
            required = list(schema.get("required", [])) or list(props)
            return {
                "type": "object",
                "properties": {
                    k: self.value_schema(props[k], text, spans, numbers) for k in required
                },
                "required": required,
                "additionalProperties": False,
            }
        choices = [c for c in _described_choices(schema) if _mentions(text, c)]
        if choices:
            return {"enum": choices}
        return {"enum": spans} if spans else {"type": "string", "maxLength": 80}

    def included(self, spec: FunctionSpec, text: str) -> list[str]:
        """Required parameters, and the optional ones the request speaks of: one of their
        choices is named, a word of their name is used, or the request holds more numbers
        than the required numeric parameters take (an optional number is then given)."""
        keep = list(spec.required)
        text_words = _words(text)
        numeric = ("integer", "number")
        surplus = number_mentions(text) - sum(
            1 for p in keep if spec.properties[p].get("type") in numeric
        )
        for name, schema in spec.properties.items():
            if name in keep:
                continue
            items = schema.get("items") or {}
            enum = [
                e for e in [*schema.get("enum", []), *items.get("enum", [])] if isinstance(e, str)
            ]
            enum += _described_choices(schema)
            if enum:
                if _named_choices(text, enum):
                    keep.append(name)
                continue
            wants_date = date_format(str(schema.get("description", ""))) is not None
            dated = wants_date and parse_date(text) is not None
            kind = moment_kind(schema)
            if kind is not None and not dated:  # "tomorrow" for a date, "at 7pm" for a time
                day, clock = first_moment(text, datetime.now())
                dated = written_as(day or datetime.now().date(), clock, kind) is not None
                dated = dated and (day is not None or kind != "date")
            named = dated or calendar_name(name, text) is not None
            named = named or _unit_value(name, schema, text) is not None
            if named or any(_stem_in(w, text_words) for w in _name_words(name)):
                keep.append(name)
            elif schema.get("type") in numeric and surplus > 0:
                keep.append(name)
                surplus -= 1
        return keep

    @staticmethod
    def weighed(spec: FunctionSpec, params: Sequence[str]) -> list[str]:
        """The parameters the reader weighs values for: ``params`` (those the request speaks
        of, :meth:`included`) and every other optional free-text or numeric one. Whether such
        a parameter gets a value ("at Nopa in *San Francisco*" for ``city``) is the learned
        argument weights' decision: leaving it out is one of its
        candidates, with a score of its own."""
        extra = [
            name
            for name, schema in spec.properties.items()
            if name not in params
            and schema.get("type") in _SCALAR
            and not schema.get("enum")
            and not _described_choices(schema)
            and moment_kind(schema) is None
        ]
        return [*params, *extra]

    def count_calls(
        self, spec: FunctionSpec, text: str, params: Sequence[str], *, by_case: bool = True
    ) -> int:
        """How many calls of ``spec`` the text asks for: the largest of
        :meth:`call_counts`."""
        counts = self.call_counts(spec, text, params, by_case=by_case)
        return min(max(counts.values(), default=1), self.options.max_calls)

    def call_counts(
        self, spec: FunctionSpec, text: str, params: Sequence[str], *, by_case: bool = True
    ) -> dict[str, int]:
        """What each reading of the text says of how many calls of ``spec`` it asks for,
        by name (a reading that finds nothing says 1): the enum values of one parameter that
        the text names ("in celsius and fahrenheit"); groups of numbers in brackets, for array
        parameters; the numbers in the text per numeric parameter, when they divide evenly
        ("3 and 4, 5 and 12" for two sides) or when one list of numbers varies while the other
        parameters take one value each ("at 5% for 10, 20 and 30 years"); and the longest list
        of names or quoted values ("Taylor Swift and Maroon 5"), unless an array parameter
        takes the list; the longest list of pairs ("USD to AUD and USD to CAD"); and the parts
        of the text that each ask for something of their own (:meth:`requests_in`)."""
        props = spec.properties
        scalar = [p for p in params if props.get(p, {}).get("type") not in ("array", "object")]
        counts = dict.fromkeys(_COUNT_READINGS, 1)
        if not scalar:
            return counts
        for name in scalar:
            schema = props.get(name, {})
            enum = [e for e in schema.get("enum", []) if isinstance(e, str)]
            enum += _described_choices(schema)
            if enum:
                named = sum(1 for e in set(enum) if _mentions(text, e))
                counts["choices"] = max(counts["choices"], named)
        arrays = [p for p in params if props.get(p, {}).get("type") == "array"]
        brackets = len(BRACKETS.findall(text)) + len(NUMBER_GROUPS.findall(text))
        if arrays and brackets > len(arrays):
            counts["groups"] = brackets // len(arrays)
        # A formula, a bracketed list or a date is one value, however many numbers it holds
        # (and the numbers of a time, "7pm", count no call when the function takes a time).
        text = DATES.sub(" ", _MATH.sub(" ", BRACKETS.sub(" ", text)))
        if any(moment_kind(props.get(p, {})) for p in params):
            for start, end in moment_spans(text):
                text = text[:start] + " " * (end - start) + text[end:]
        if arrays:
            text = NUMBER_GROUPS.sub(" ", text)
        numeric = sum(1 for p in scalar if props[p].get("type") in ("integer", "number"))
        mentions = number_mentions(text)
        # A plain list of numbers goes to an array of numbers when there is one.
        number_array = any(
            (props[p].get("items") or {}).get("type") in ("integer", "number") for p in arrays
        )
        if numeric and mentions > numeric and not number_array:
            longest = max(
                (len(LIST_SEP.split(m.group(0))) for m in NUM_LIST.finditer(text)), default=1
            )
            if longest >= 2 and mentions == longest + numeric - 1:
                counts["number_list"] = longest
            elif mentions % numeric == 0:
                counts["numbers_per_parameter"] = mentions // numeric
        # A list goes to an array parameter that can take it; an array of fixed choices
        # takes only a list of those choices ("RGB and HEX", not "navy, purple and maroon").
        free_array = any(
            props.get(p, {}).get("type") == "array"
            and not (props[p].get("items") or {}).get("enum")
            for p in params
        )
        choices = {
            str(c).lower()
            for p in params
            if props.get(p, {}).get("type") == "array"
            for c in (props[p].get("items") or {}).get("enum", [])
        }
        strings = [p for p in scalar if props[p].get("type", "string") == "string"]
        # Parameters of one kind ("start_city", "end_city") take a list of that many names.
        kinds = Counter(
            re.sub(r"\d+$", "", re.split(r"[_.]|(?<=[a-z])(?=[A-Z])", p)[-1]).lower()
            for p in strings
        )
        siblings = max(kinds.values(), default=0)
        if not free_array and strings:
            for match in [*name_lists(text), *WORD_LISTS.finditer(text)]:
                items = [i.lower() for i in list_items(text, match)[1]]
                if not all(any(c in i for c in choices) for i in items) and len(items) > siblings:
                    counts["name_list"] = max(counts["name_list"], len(items))
        for match in pair_lists(text):
            counts["pair_list"] = max(counts["pair_list"], len(list_items(text, match)[1]))
        counts["parts"] = max(1, len(self.requests_in(text, by_case=by_case)))
        return counts

    @staticmethod
    def requests_in(text: str, *, by_case: bool = True) -> list[str]:
        """The parts of a text that each ask for something of their own: split where it goes
        on with "also", "another", "plus", "then" or a new question, or one part per case
        of a request that describes its cases in turn ("the first ..., the second ...")
        unless ``by_case`` is false (the cases of a request that several functions serve
        are usually those functions' tasks, not repeated calls)."""
        ordinal = ordinal_parts(text) if by_case else []
        if ordinal:
            return ordinal
        parts = [p.strip() for p in NEXT_REQUEST.split(text) if p and len(p.strip()) > 8]
        # A part without a value of its own ("Also provide an estimate") adds no call.
        return [p for p in parts if has_value(p)] if len(parts) > 1 else parts

    def call_schema(
        self, spec: FunctionSpec, text: str, context: str, *, by_case: bool = True
    ) -> tuple[dict[str, Any], list[str], int]:
        spans = spans_in(context)
        numbers = numbers_in(context)
        params = self.included(spec, text)
        properties = {
            name: self.value_schema(spec.properties[name], text, spans, numbers) for name in params
        }
        args = {
            "type": "object",
            "properties": properties,
            "required": params,
            "additionalProperties": False,
        }
        count = self.count_calls(spec, text, params, by_case=by_case)
        schema = {"type": "array", "items": args, "minItems": count, "maxItems": count}
        return schema, params, count

    # -- prompting -------------------------------------------------------------------------
    @staticmethod
    def describe(spec: FunctionSpec, params: Sequence[str]) -> str:
        # Short on purpose: every prompt token costs time on a CPU, and the grammar already
        # holds the parameter names and the allowed values.
        lines = [f"Function: {spec.name}"]
        for name in params:
            schema = spec.properties.get(name, {})
            desc = str(schema.get("description", "")).split(". ")[0][:90]
            lines.append(f"- {name} ({schema.get('type', 'any')}): {desc}")
        return "\n".join(lines)

    def messages(
        self, spec: FunctionSpec, params: Sequence[str], text: str, count: int
    ) -> list[ChatMessage]:
        task = f"{self.describe(spec, params)}\nCalls: {count}\nRequest: {text}"
        return [*_FEW_SHOT, {"role": "user", "content": task}]

    def read_arguments(
        self,
        spec: FunctionSpec,
        text: str,
        params: Sequence[str],
        schema: Mapping[str, Any],
        now: datetime | None = None,
    ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """Values read straight from the request, and for each parameter that could not be
        settled with a clear margin, its best candidates (best first; may be empty).

        A parameter that asks for a date, a time or both in a fixed form (``format: date``,
        "YYYY-MM-DD", "HH:MM"...) gets the first date and time the request names, read
        against ``now`` ("tomorrow at 7pm" -> "2026-03-13", "19:00"), when it is the only
        parameter asking for that kind; the words of dates and times then give no other value.
        """
        properties: Mapping[str, Any] = schema["items"]["properties"]
        values: dict[str, Any] = {}
        open_: dict[str, list[Any]] = {}
        scalar: list[str] = []
        lists: list[str] = []
        moments = self._read_moments(spec, text, params, now or datetime.now())
        values.update(moments)
        if moments:
            text = _without_moments(text)
        for name in params:
            if name in moments:
                continue
            narrowed = properties.get(name, {})
            declared = spec.properties.get(name, {})
            kind = declared.get("type")
            if declared.get("enum"):
                options = list(narrowed["enum"])  # the choices the request names, or all
                # A version of a split request names only its own choice.
                options = [o for o in options if _mentions(text, str(o))] or options
                if len(options) == 1:
                    values[name] = options[0]
                else:
                    open_[name] = options
            elif kind == "boolean":
                values[name] = _flag(text, name)
            elif kind in ("object", "dict"):
                open_[name] = []  # an object is not read from text
            elif kind == "array" and not (declared.get("items") or {}).get("enum"):
                lists.append(name)
            elif kind == "array":
                named = _named_choices(text, (declared.get("items") or {}).get("enum", []))
                if named:
                    values[name] = named
                else:
                    open_[name] = []
            elif kind in (*_SCALAR, None) and not _described_choices(declared):
                scalar.append(name)  # an untyped parameter is read as a string
            else:
                options = list(narrowed.get("enum", []))
                options = [o for o in options if _mentions(text, str(o))] or options
                if len(options) == 1:
                    values[name] = options[0]
                else:
                    open_[name] = options[:3]
        if lists:
            read = read_lists(text, spec.properties, lists)
            for name in lists:
                if name in read:
                    values[name] = read[name]
                else:
                    open_[name] = []
        if scalar:
            # A choice an enum parameter took ("RGB and HEX" for conversion_type) is not also
            # a value for a free-text one ("for navy": color_name); blanked, offsets kept.
            free_text = text
            for name, value in values.items():
                declared = spec.properties.get(name, {})
                if not (declared.get("enum") or (declared.get("items") or {}).get("enum")):
                    continue
                for taken in value if isinstance(value, list) else [value]:
                    free_text = re.sub(
                        rf"(?i)(?<!\w){re.escape(str(taken))}(?!\w)",
                        lambda m: " " * len(m[0]),
                        free_text,
                    )
            choices = assign_arguments(
                free_text,
                spec.properties,
                scalar,
                spec.required,
                margin=self.options.margin,
                similarity=self._similarity,
                function_text=f"{spec.name} {spec.description}",
                entities=self._entities,
            )
            for name, choice in choices.items():
                if choice.value is None and choice.confident:
                    continue  # an optional parameter nothing in the request speaks for
                if choice.value is not None and choice.confident:
                    values[name] = choice.value
                elif choice.value is None:
                    open_[name] = []
                else:
                    ranked = list(dict.fromkeys(c.mention.value for c in choice.ranked))
                    open_[name] = [choice.value, *[v for v in ranked if v != choice.value]][:3]
            # A unit written with the numbers ("a radius of 5cm") is the unit parameter's value,
            # though nothing names the parameter itself.
            for name in scalar:
                if name in values or open_.get(name):
                    continue
                unit = _unit_value(name, spec.properties[name], text)
                if unit:
                    values[name] = unit
                    open_.pop(name, None)
        return values, open_

    def _similarity(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        assert self._encoder is not None
        vectors = self._encoder.encode([*queries, *texts])
        result: np.ndarray = vectors[: len(queries)] @ vectors[len(queries) :].T
        return result

    @staticmethod
    def _read_moments(
        spec: FunctionSpec, text: str, params: Sequence[str], now: datetime
    ) -> dict[str, str]:
        kinds = {
            name: moment_kind(spec.properties[name])
            for name in params
            if spec.properties[name].get("type") == "string"
            and not spec.properties[name].get("enum")
        }
        counts = Counter(kinds.values())
        day, clock = first_moment(text, now)
        if clock is not None and day is None and counts["date-time"]:
            day = now.date()  # "remind me at 5pm": today
        found = {}
        for name, kind in kinds.items():
            if kind is None or counts[kind] > 1:
                continue  # check-in and check-out: the reader assigns the dates it finds
            value = written_as(day, clock, kind)
            if value is not None:
                found[name] = value
        return found

    def extracted(
        self, spec: FunctionSpec, values: dict[str, Any], open_: Mapping[str, list[Any]]
    ) -> dict[str, Any]:
        """Arguments from reading alone: undecided parameters take their best candidate;
        those with none are left out (a required one is then missing, which verification
        reports)."""
        args = dict(values)
        args.update({name: options[0] for name, options in open_.items() if options})
        return self.coerce(spec, args)

    def split_request(
        self,
        spec: FunctionSpec,
        text: str,
        params: Sequence[str],
        count: int,
        *,
        by_case: bool = True,
    ) -> list[str]:
        """``count`` versions of a request that asks for several calls, each keeping one of
        them: the request is split where a new one begins ("... and another flight from ...")
        unless one part holds a whole list; a list of names, numbers or pairs ("Boston, Paris
        and Rome", "USD to AUD and USD to CAD") is replaced by each of its items in turn
        (several such lists are zipped: "Taylor Swift and Maroon 5 ... 20 and 15 minutes
        respectively"); otherwise the numbers are shared out in order. Groups of numbers in
        parentheses ("the pairs (45, 60) and (81, 27)") and lists that each hold one call's
        numbers go one to a call."""
        groups = list(NUMBER_GROUPS.finditer(text))
        if count > 1 and len(groups) == count:
            return one_each(text, groups)
        # Lists of numbers that each hold one call's numbers ("John chose 36 and 48, while
        # Mary chose 60 and 96" for num1 and num2) go one to a call, not item by item.
        numeric = sum(
            1 for p in params if spec.properties.get(p, {}).get("type") in ("integer", "number")
        )
        runs = list(NUM_LIST.finditer(text))
        each = count > 1 and numeric > 1 and len(runs) == count
        if each and all(len(list_items(text, m)[1]) == numeric for m in runs):
            return one_each(text, runs)
        found = [
            *pair_lists(text),
            *name_lists(text),
            *NUM_LIST.finditer(text),
            *WORD_LISTS.finditer(text),
        ]
        dates = [d.span() for d in DATES.finditer(text)]
        zipped: list[tuple[int, int, list[str]]] = []
        for match in sorted(found, key=lambda m: (m.start(), -m.end())):
            if any(a < match.end() and match.start() < b for a, b in dates):
                continue  # "March 10, 2022" is a date, not the list "10, 2022"
            list_end, items = list_items(text, match)
            if len(items) == count and all(match.start() >= end for _, end, _ in zipped):
                zipped.append((match.start(), list_end, items))
        parts = self.requests_in(text, by_case=by_case)
        # A part without a number is no call of a function that needs numbers ("..., and then
        # compare the two areas").
        needs_number = any(
            spec.properties.get(p, {}).get("type") in ("integer", "number") for p in spec.required
        )
        if needs_number and not all(NUMBER.search(part) for part in parts):
            parts = []
        # Requests written out one after the other ("... for 'Queens Hotel' in Berlin ... and
        # for 'Royal Hotel' in Paris ...") are the calls, unless one of them holds a whole
        # list of as many items ("hotels in Paris, France and New York, USA. Also I prefer").
        if len(parts) == count:
            bounds, start = [], 0
            for part in parts:
                at = text.find(part, start)
                if at >= 0:  # a part told in turn may be reworded ("The first ...")
                    bounds.append((at, at + len(part)))
                    start = at + len(part)
            if not any(a <= s0 and e0 <= b for s0, e0, _ in zipped for a, b in bounds):
                return parts
        if zipped:
            variants = []
            for i in range(count):
                variant, last = "", 0
                for start, end, items in zipped:
                    variant += text[last:start] + items[i]
                    last = end
                # Each version holds one item of each list: "respectively" has nothing left
                # to pair.
                variant = re.sub(r",?\s+respectively\b", "", variant + text[last:], flags=re.I)
                variants.append(variant)
            return variants
        # Each version keeps its own share of the values the request names in turn: one of
        # the choices named for a parameter ("in easy mode ... in hard mode") and one block
        # of the numbers, in order ("stage 7 ... stage 3"); the other shares are cut out.
        cut: list[list[tuple[int, int]]] = [[] for _ in range(count)]
        for name in params:
            schema = spec.properties.get(name, {})
            enum = [e for e in schema.get("enum", []) if isinstance(e, str)]
            named = list(
                dict.fromkeys(e for e in enum + _described_choices(schema) if _mentions(text, e))
            )
            if len(named) == count:
                for i in range(count):
                    for other in named[:i] + named[i + 1 :]:
                        pattern = rf"(?i)(?<!\w){re.escape(other)}(?!\w)"
                        cut[i] += [m.span() for m in re.finditer(pattern, text)]
                break
        names = names_in(text)
        distinct = list(dict.fromkeys(m.group(0) for m in names))
        if len(distinct) == count:  # "... from HSBC ... and for Wells Fargo ..."
            for i in range(count):
                cut[i] += [m.span() for m in names if m.group(0) != distinct[i]]
        numbers = list(NUMBER.finditer(text))
        # Numbers that one call needs all of are common to every call ("a wire of 5 m and
        # 0.01 m2, of copper and of aluminum").
        per_call = max(1, len(numbers) // count) if len(numbers) > numeric else len(numbers)
        for i in range(count if len(numbers) > numeric else 0):
            kept = range(i * per_call, (i + 1) * per_call)
            cut[i] += [m.span() for j, m in enumerate(numbers) if j not in kept]
        variants = []
        for spans in cut:
            pieces, last = [], 0
            for start, end in sorted(spans):
                if start >= last:
                    pieces.append(text[last:start])
                    last = end
            variants.append("".join(pieces) + text[last:])
        return variants

    def fill(
        self,
        spec: FunctionSpec,
        text: str,
        context: str,
        *,
        by_case: bool = True,
        now: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        schema, params, count = self.call_schema(spec, text, context, by_case=by_case)
        filler = self.filler
        weighed = self.weighed(spec, params)
        if count == 1 and filler != "generate":
            values, open_ = self.read_arguments(spec, text, weighed, schema, now)
            if filler == "extract" or not open_:
                return [self.extracted(spec, values, open_)], 0
            properties = schema["items"]["properties"]
            for name, value in values.items():
                properties[name] = {"enum": [value]}
            for name, options in open_.items():
                if options and all(isinstance(o, (str, int, float)) for o in options):
                    properties[name] = {"enum": options}
        fixed = {
            name: sub["enum"][0]
            for name, sub in schema["items"]["properties"].items()
            if len(sub.get("enum", ())) == 1
        }
        if count == 1 and all(name in fixed for name in params):
            return [self.coerce(spec, fixed)], 0  # nothing left to choose
        if filler == "extract" or self._generator is None:
            calls: list[dict[str, Any]] = []
            for variant in self.split_request(spec, text, params, count, by_case=by_case):
                values, open_ = self.read_arguments(spec, variant, weighed, schema, now)
                call = self.extracted(spec, values, open_)
                if calls:  # "... and the same for a sample size of 150": the rest carries over
                    inherited = {p: calls[-1][p] for p in spec.required if p in calls[-1]}
                    call = {**inherited, **call}
                calls.append(call)
            return _distinct(calls), 0
        generated = self._generator.generate(
            self.messages(spec, params, text, count), schema, max_tokens=self.options.max_new_tokens
        )
        tokens = generated.prompt_tokens + generated.completion_tokens
        try:
            calls = json.loads(generated.text)
        except json.JSONDecodeError:
            return [], tokens  # the token budget ran out mid-object
        if isinstance(calls, dict):
            calls = [calls]
        filled = [
            self.coerce(spec, _unrepeated(c), read=False) for c in calls if isinstance(c, dict)
        ]
        return _distinct(filled), tokens

    @staticmethod
    def coerce(spec: FunctionSpec, args: dict[str, Any], *, read: bool = True) -> dict[str, Any]:
        """Numbers as the declared type (``2.0`` for an integer is ``2``, ``5`` for a number
        stays ``5``, items of number arrays become floats), and, for values read from the
        request (``read``), a bare US city in the "City, State" form its description asks
        for; a generative model's answer is its own ("Springfield" stays "Springfield")."""
        out: dict[str, Any] = {}
        for name, value in args.items():
            schema = spec.properties.get(name, {})
            kind = schema.get("type")
            if kind == "integer" and isinstance(value, float) and value.is_integer():
                value = int(value)
            elif kind == "number" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            elif isinstance(value, str) and not schema.get("enum") and read:
                value = in_city_state_format(value, str(schema.get("description", "")))
            elif kind == "array" and isinstance(value, list):
                item_kind = (schema.get("items") or {}).get("type")
                if item_kind == "number":
                    value = [
                        float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                        for v in value
                    ]
            out[name] = value
        return out

    # -- the contract ----------------------------------------------------------------------
    def predict_one(self, item: FunctionCallInput) -> Prediction[FunctionCallOutput]:
        """The answer, with the probability that it is right (:meth:`confidence_inputs`
        weighed by a logistic model fitted on tuning data, ``_CONFIDENCE``); with a native
        tool-calling model, its own answer (:meth:`called`)."""
        self.ensure_loaded()
        if self._tool_caller is not None:
            return self.called(item, self._tool_caller)
        raw, chosen = self.read_answer(item)
        *weights, bias = _CONFIDENCE
        z = float(np.dot(weights, self.confidence_inputs(item, raw, chosen))) + bias
        return Prediction(raw.output, float(1.0 / (1.0 + np.exp(-z))), raw.tokens)

    def read_answer(
        self, item: FunctionCallInput
    ) -> tuple[Prediction[FunctionCallOutput], list[float]]:
        """:meth:`answer`, and how sure the reading of its values is: the probability (under
        the learned argument weights) of the value chosen for each parameter read from the
        text."""
        with chosen_probabilities() as chosen:
            raw = self.answer(item)
        return raw, chosen

    def confidence_inputs(
        self,
        item: FunctionCallInput,
        raw: Prediction[FunctionCallOutput],
        chosen: Sequence[float] = (),
    ) -> list[float]:
        """What the confidence weighs: the gate's probability that a function applies,
        whether the answer passes verification, whether it makes several calls, whether it
        makes none, the gate's probability again for a no-call, and for calls how sure the
        values read are (the lowest and the mean log probability of the ``chosen`` ones,
        :meth:`read_answer`) and the share of the request's words that neither the calls'
        values nor the functions' definitions account for (words a value or a call was
        missed for: "set the *kitchen* thermostat to 20", "... and *water* the *garden*")."""
        calls = bool(raw.output.calls)
        applies = raw.confidence if calls else 1.0 - raw.confidence
        verified = not self.verify(item, raw.output)
        several = len(raw.output.calls) > 1
        lowest = min(chosen, default=1.0)
        mean_log = float(np.mean(np.log(np.clip(chosen, 1e-6, 1.0)))) if chosen else 0.0
        return [
            applies,
            float(verified),
            float(several),
            float(not calls),
            (not calls) * applies,
            calls * lowest,
            calls * mean_log,
            calls * unexplained_share(item.text(), raw.output.calls, item.functions),
        ]

    @property
    def acceptance_threshold(self) -> float | None:
        """The confidence at which the kept answers of the tuning data were 95% right; none
        for a native tool-calling model, whose confidence nothing here was fitted on (the
        binding's ``min_confidence`` decides)."""
        tools = self._tool_caller is not None or self.filler == "tools"
        return None if tools else _ACCEPT

    def called(self, item: FunctionCallInput, caller: ToolCaller) -> Prediction[FunctionCallOutput]:
        """The calls a native tool-calling model makes for the conversation.

        Arguments keep the model's values (numbers as the declared type); a repeated call is
        dropped. The confidence is the model's mean token probability, and 0 when the server
        reports none, when a call's arguments are not a JSON object, or when an answer fails
        verification, so that such an answer escalates instead of passing.
        """
        specs = item.specs()
        if not specs:
            out = FunctionCallOutput(calls=[], no_call=True, reason="no functions were given")
            return Prediction(out, 1.0, 0)
        turns = (
            item.request
            if isinstance(item.request, str)
            else [(t.role, t.content) for t in item.request]
        )
        answer = caller.call_tools(
            tool_messages(turns, item.moment()),
            tool_definitions(specs),
            max_tokens=self.options.max_new_tokens,
        )
        by_name = {spec.name: spec for spec in specs}
        calls: list[dict[str, Any]] = []
        unreadable = False
        for name, text in answer.calls:
            arguments, problem = parsed_arguments(text)
            unreadable = unreadable or problem is not None
            spec = by_name.get(name)
            if spec is not None:
                arguments = self.coerce(spec, arguments, read=False)
            calls.append({"name": name, "arguments": arguments})
        kept = [ToolCall.model_validate(c) for c in _distinct(calls)[: self.options.max_calls]]
        reason = "" if kept else (answer.text.strip()[:500] or "the model called no function")
        out = FunctionCallOutput(calls=kept, no_call=not kept, reason=reason)
        confidence = 0.0 if answer.mean_logprob is None else float(np.exp(answer.mean_logprob))
        if unreadable or (kept and self.verify(item, out)):
            confidence = 0.0
        return Prediction(out, confidence, answer.prompt_tokens + answer.completion_tokens)

    def answer(self, item: FunctionCallInput) -> Prediction[FunctionCallOutput]:
        """The calls for the last user turn, with the gate's probability as confidence (for
        a no-call, the probability that no function applies). In a chat, a turn that only
        changes the request before it ("and for tomorrow?") repeats that request's call with
        what it changes, and a call that lacks a required value takes it from earlier turns
        ("book a hotel there")."""
        self.ensure_loaded()
        specs = item.specs()
        if not specs:
            out = FunctionCallOutput(calls=[], no_call=True, reason="no functions were given")
            return Prediction(out, 1.0, 0)
        answer, gate = self._answer(item, specs)
        if isinstance(item.request, str):
            return self.reweigh(item, answer, gate)
        turns = [t.model_dump() for t in item.request]
        before = earlier_turns(turns)
        if not before:
            return self.reweigh(item, answer, gate)
        earlier = item.model_copy(update={"request": [ChatTurn.model_validate(t) for t in before]})
        history = joined_turns(t["content"] for t in before)
        if answer.output.calls:
            completed = self._completed(answer, specs, history, item.moment())
            answer = self.reweigh(item, completed, gate)
        if answer.output.calls or not goes_on(item.text()):
            return answer
        previous = self.answer(earlier)
        if not previous.output.calls:
            return answer
        changed = self._changed(previous.output.calls[-1], specs, item.text(), item.moment())
        if changed is None:
            return answer
        out = FunctionCallOutput(calls=[changed], no_call=False)
        return Prediction(out, previous.confidence, previous.tokens)

    def _changed(
        self, call: ToolCall, specs: Sequence[FunctionSpec], text: str, now: datetime
    ) -> ToolCall | None:
        """``call`` with the values a follow-up names put in; None when it names none."""
        spec = next(s for s in specs if s.name == call.name)
        # The parameters the follow-up speaks of (a choice, a word of their name, a date,
        # a number beyond those required) must take a value from it; no other is read.
        schema, params, _ = self.call_schema(all_optional(spec), text, text)
        spoken = FunctionSpec(spec.name, spec.description, {**spec.parameters, "required": params})
        values, _ = self.read_arguments(spoken, text, params, schema, now)
        values = self.coerce(spec, values)
        new = {k: v for k, v in values.items() if call.arguments.get(k) != v}
        new.update(self._analogues(spec, call, text, skip=new))
        if not new:
            return None
        return ToolCall(name=call.name, arguments={**call.arguments, **new})

    def _analogues(
        self, spec: FunctionSpec, call: ToolCall, text: str, *, skip: Mapping[str, Any]
    ) -> dict[str, str]:
        """Free-text values of ``call`` that the follow-up names another of the same kind
        for ("kitchen" -> "and the *bedroom* too", "Paris" -> "what about *Berlin*?"): the
        follow-up's words closest in meaning to the old value, when close enough."""
        spans = [s for s in spans_in(text) if not re.search(r"\d", s)]
        swappable: dict[str, str] = {}
        for name, old in call.arguments.items():
            schema = spec.properties.get(name, {})
            free = schema.get("type", "string") == "string" and not schema.get("enum")
            if name in skip or not isinstance(old, str) or not free or moment_kind(schema):
                continue
            if len(old.split()) <= _ANALOGUE_WORDS:  # a message or a title is not swapped
                swappable[name] = old
        if not spans or not swappable:
            return {}
        closeness = self._similarity(list(swappable.values()), spans)  # one encoder call
        found: dict[str, str] = {}
        for row, (name, old) in zip(closeness, swappable.items(), strict=True):
            same = old.lower()
            others = [(float(c), w) for c, w in zip(row, spans, strict=True) if w.lower() != same]
            score, word = max(others, default=(0.0, ""))
            if score >= _ANALOGUE:
                found[name] = word
        return found

    def _completed(
        self,
        answer: Prediction[FunctionCallOutput],
        specs: Sequence[FunctionSpec],
        history: str,
        now: datetime,
    ) -> Prediction[FunctionCallOutput]:
        """The calls with the required values they lack read from earlier turns."""
        calls = []
        for call in answer.output.calls:
            spec = next(s for s in specs if s.name == call.name)
            # A value that only repeats the function's name ("hotel" of "book a hotel
            # there") stands for one the turn does not give.
            named = _name_words(spec.name)
            missing = [
                p
                for p in spec.required
                if p not in call.arguments
                or (isinstance(call.arguments[p], str) and _words(call.arguments[p]) <= named)
            ]
            if missing:
                schema, _, _ = self.call_schema(spec, history, history)
                for name in missing:
                    schema["items"]["properties"].setdefault(
                        name, self.value_schema(spec.properties[name], history, [], [])
                    )
                values, _ = self.read_arguments(spec, history, missing, schema, now)
                call = ToolCall(name=call.name, arguments={**call.arguments, **values})
            calls.append(call)
        out = FunctionCallOutput(calls=calls, no_call=False)
        return Prediction(out, answer.confidence, answer.tokens)

    def _answer(
        self, item: FunctionCallInput, specs: Sequence[FunctionSpec]
    ) -> tuple[Prediction[FunctionCallOutput], list[float]]:
        """The calls the last user turn asks for, read on its own, and the gate's inputs."""
        chosen, confidence, closest, gate = self.choose(item, specs)
        if not chosen:
            reason = (
                f"no function applies: the closest, {closest.name!r}, scores "
                f"{confidence:.2f} < {self.options.relevance_threshold:.2f}"
            )
            out = FunctionCallOutput(calls=[], no_call=True, reason=reason)
            return Prediction(out, 1.0 - confidence, 0), gate
        calls: list[ToolCall] = []
        tokens = 0
        context = item.context()
        for spec, text in chosen:
            filled, used = self.fill(
                spec, text, context, by_case=len(chosen) == 1, now=item.moment()
            )
            tokens += used
            calls += [ToolCall(name=spec.name, arguments=a) for a in filled]
        out = FunctionCallOutput(calls=calls[: self.options.max_calls], no_call=not calls)
        return Prediction(out, float(np.clip(confidence, 0.0, 1.0)), tokens), gate

    def reweigh(
        self, item: FunctionCallInput, answer: Prediction[FunctionCallOutput], gate: list[float]
    ) -> Prediction[FunctionCallOutput]:
        """The answer weighed by the gate again once its verification is known: calls that
        cannot be traced to the request count against them serving it, and below the
        threshold the answer is a no-call (the gate's probability is the confidence)."""
        if not answer.output.calls:
            return answer
        problems = self.verify(item, answer.output)
        relevance = self.gate_probability([*gate[:-1], float(not problems)])
        if relevance >= self.options.relevance_threshold:
            return Prediction(answer.output, relevance, answer.tokens)
        reason = (
            f"no function applies: the best answer, {answer.output.calls[0].name!r}, scores "
            f"{relevance:.2f} < {self.options.relevance_threshold:.2f}"
            + (f" ({problems[0]})" if problems else "")
        )
        out = FunctionCallOutput(calls=[], no_call=True, reason=reason)
        return Prediction(out, 1.0 - relevance, answer.tokens)

    def predict_batch(
        self, inputs: Sequence[FunctionCallInput]
    ) -> list[Prediction[FunctionCallOutput]]:
        return [self.predict_one(item) for item in inputs]

    def verify(self, item: BaseModel, output: BaseModel) -> list[str]:
        """Problems a planner can act on; empty when every call can be trusted:

        - each call names a given function, and no call repeats another;
        - its arguments are valid against the function's JSON Schema (jsonschema, Draft
          2020-12, every keyword and format), required ones present, no unknown ones;
        - every value comes from the conversation: written in it, a choice or default of
          its parameter, or a date, time, currency or unit it names written in another form
          (:mod:`~orchestrator.specialists.function_call.grounding`);
        - a date or time parameter holds a date or time.
        """
        request = FunctionCallInput.model_validate(item.model_dump())
        result = FunctionCallOutput.model_validate(output.model_dump())
        specs = {s.name: s for s in request.specs()}
        problems: list[str] = []
        if result.no_call and result.calls:
            problems.append("no_call is true but calls were returned; drop one of the two")
        said = Conversation.of(request.conversation(), request.moment()) if result.calls else None
        seen: dict[str, int] = {}
        for i, call in enumerate(result.calls):
            spec = specs.get(call.name)
            if spec is None:
                problems.append(
                    f"calls[{i}]: unknown function {call.name!r}; call one of: "
                    f"{', '.join(sorted(specs))}"
                )
                continue
            key = json.dumps([call.name, call.arguments], sort_keys=True, default=str)
            if key in seen:
                problems.append(f"calls[{i}]: repeats calls[{seen[key]}]; drop the duplicate")
                continue
            seen[key] = i
            where = f"calls[{i}] {call.name}"
            problems += schema_problems(call.arguments, spec.parameters, where)
            assert said is not None
            problems += grounding_problems(call.arguments, spec.parameters, said, where)
        return problems


# Written for this project (not taken from any benchmark): they show the answer format and
# that values are copied from the request.
_FEW_SHOT: list[ChatMessage] = [
    {
        "role": "system",
        "content": "You write the arguments of function calls as JSON. Answer with a JSON "
        "list holding one object of arguments per call. Copy each value from the request.",
    },
    {
        "role": "user",
        "content": "Function: book_table\n"
        "- restaurant (string): Name of the restaurant.\n- guests (integer): Number of "
        "people.\n- time (string): Time of the booking.\nCalls: 1\n"
        "Request: Book a table for 4 at Luigi's Trattoria at 7 pm tonight.",
    },
    {
        "role": "assistant",
        "content": '[{"restaurant": "Luigi\'s Trattoria", "guests": 4, "time": "7 pm"}]',
    },
    {
        "role": "user",
        "content": "Function: convert_currency\n- amount (number): The amount to convert.\n"
        "- source (string): Currency code to convert from.\n"
        "- target (string): Currency code to convert to.\nCalls: 2\n"
        "Request: How much is 250 USD in EUR, and 80 USD in JPY?",
    },
    {
        "role": "assistant",
        "content": '[{"amount": 250, "source": "USD", "target": "EUR"}, '
        '{"amount": 80, "source": "USD", "target": "JPY"}]',
    },
]
