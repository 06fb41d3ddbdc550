"""The specialist contract: a small model behind a typed input, output and options.

``Specialist[In, Out, Options]`` ties the three pydantic models to the class: a subclass that
names them as type parameters gets ``input_model``, ``output_model`` and ``options_model`` set
from them, and ``self.options`` is typed as ``Options``. A subclass may also set the three
attributes itself (a plain ``class Urgency(Specialist)``); what it sets wins.
"""

from __future__ import annotations

import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from typing_extensions import TypeVar

from orchestrator._contracts import ToolInfo
from orchestrator._visible_text import require_visible_text

__all__ = ["AnySpecialist", "NoOptions", "Prediction", "Specialist", "TextInput"]


class NoOptions(BaseModel):
    """Options of a specialist that takes none."""

    model_config = ConfigDict(extra="forbid")


InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)
# A default, so that `Specialist[In, Out]` still names a specialist without options.
OptionsT = TypeVar("OptionsT", bound=BaseModel, default=NoOptions)


class TextInput(BaseModel):
    """The input of the text specialists."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000, description="The text to analyse.")

    @field_validator("text")
    @classmethod
    def _has_visible_text(cls, text: str) -> str:
        return require_visible_text(text)


class Prediction(NamedTuple, Generic[OutT]):
    """One answer of a specialist: the output, its confidence in [0, 1], and the input tokens
    the model read (0 when it does not count them)."""

    output: OutT
    confidence: float
    tokens: int = 0


_MODEL_ATTRIBUTES = ("input_model", "output_model", "options_model")


class Specialist(ABC, Generic[InT, OutT, OptionsT]):
    """A narrow model with a declared contract.

    Subclasses name their models as type parameters (``Specialist[In, Out, Options]``; the
    options default to :class:`NoOptions`), set ``name`` and ``description`` and implement
    :meth:`predict_batch`. Heavy set-up (loading weights) belongs in :meth:`load`, which the
    framework calls once, off the event loop, before the first prediction.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    # Class attributes, filled from the type parameters by __init_subclass__. They are not
    # declared ClassVar because a ClassVar cannot hold a type parameter.
    input_model: type[InT]
    output_model: type[OutT]
    options_model: type[OptionsT]
    #: Output keys that become fields of the run result; ``None`` means every key.
    summary_fields: ClassVar[tuple[str, ...] | None] = None
    #: The (input, output, options) type arguments, resolved once per class.
    __specialist_arguments__: ClassVar[tuple[Any, ...]] = ()
    options: OptionsT

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        arguments = _own_arguments(cls)
        # A class that is not parametrised itself inherits its parent's arguments and models.
        if arguments is not None:
            cls.__specialist_arguments__ = arguments
            for attribute, argument in zip(_MODEL_ATTRIBUTES, arguments, strict=True):
                if attribute in cls.__dict__:
                    continue  # set by the class itself
                if isinstance(argument, type) and issubclass(argument, BaseModel):
                    setattr(cls, attribute, argument)
        if not hasattr(cls, "options_model"):
            cls.options_model = NoOptions  # type: ignore[assignment]  # the parameter's default

    def __init__(self, options: OptionsT | Mapping[str, Any] | None = None) -> None:
        if options is None or isinstance(options, Mapping):
            options = self.options_model.model_validate(dict(options or {}))
        self.options = options
        self._loaded = False

    @property
    def model_id(self) -> str:
        """Identifier of the model behind the specialist, recorded in provenance."""
        return self.name

    @property
    def labels(self) -> tuple[str, ...] | None:
        """The closed label set of a classifier; ``None`` for open outputs."""
        return None

    @property
    def acceptance_threshold(self) -> float | None:
        """A calibrated confidence threshold that comes with the model, if any; verification
        uses it unless the graph sets ``min_confidence`` for the binding."""
        return None

    @property
    def rung_confidences(self) -> dict[str, dict[str, Any]]:
        """Escalation rungs' confidences fitted on validation data for this model (rung name
        -> :class:`~orchestrator.specialists.rung_confidence.RungConfidence` as JSON)."""
        return {}

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self.load()
            self._loaded = True

    def load(self) -> None:
        """Load weights; called once before the first prediction."""

    def close(self) -> None:
        """Release what the specialist holds open (connections to a model server); called
        when the toolset that owns it closes."""

    @abstractmethod
    def predict_batch(self, inputs: Sequence[InT]) -> list[Prediction[OutT]]:
        """Predict for several inputs at once (one forward pass where the model allows it)."""

    def verify(self, input: InT, output: OutT) -> list[str]:
        """Problems with one answer that its schema cannot catch (a span that is not in the
        source, an argument the function does not take); an empty list when there are none.

        The framework's verify step calls it on every result bound to this specialist, its
        own answers and those of escalations alike, and a problem fails verification with
        the problem as the reason. It runs in the orchestrator's process, also when the
        specialist itself is served over MCP, so it must be cheap and must not need
        :meth:`load`.
        """
        return []

    def verify_json(self, input: Mapping[str, Any], output: Mapping[str, Any]) -> list[str]:
        """:meth:`verify` on the JSON form of a call: arguments and output."""
        try:
            parsed_input = self.input_model.model_validate(dict(input))
            parsed_output = self.output_model.model_validate(dict(output))
        except ValidationError as exc:
            return [f"cannot check the output against its input: {exc.errors()[0]['msg']}"]
        return self.verify(parsed_input, parsed_output)

    @classmethod
    def has_verify(cls) -> bool:
        """Whether the class adds checks of its own (overrides :meth:`verify`)."""
        return cls.verify is not Specialist.verify

    def tool_info(self) -> ToolInfo:
        return ToolInfo(
            name=self.name,
            description=self.description,
            input_schema=self.input_model.model_json_schema(),
            output_schema=self.output_model.model_json_schema(),
            labels=self.labels,
            summary_fields=self.summary_fields,
            threshold=self.acceptance_threshold,
            rungs=self.rung_confidences,
        )


#: Any specialist, whatever its models: what registries, toolsets and servers hold.
AnySpecialist = Specialist[Any, Any, Any]


def _own_arguments(cls: type[AnySpecialist]) -> tuple[Any, ...] | None:
    """The (input, output, options) arguments that `cls`'s own bases give
    :class:`Specialist`, through any generic classes in between
    (``TextClassifier[IntentOutput, IntentOptions]``); ``None`` when no base is
    parametrised. A parameter that no class fills stays a type variable."""
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, Specialist)):
            continue
        arguments = get_args(base)
        if origin is Specialist:
            return arguments
        parameters: tuple[Any, ...] = getattr(origin, "__parameters__", ())
        filled = dict(zip(parameters, arguments, strict=True))
        return tuple(
            filled.get(a, a) if isinstance(a, typing.TypeVar) else a
            for a in origin.__specialist_arguments__
        )
    return None
