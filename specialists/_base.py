"""The specialist contract: a small model behind a typed input and output."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator._contracts import ToolInfo

__all__ = ["NoOptions", "Prediction", "Specialist", "TextInput"]

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)


class NoOptions(BaseModel):
    """Options of a specialist that takes none."""

    model_config = ConfigDict(extra="forbid")


class TextInput(BaseModel):
    """The input of the text specialists."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000, description="The text to analyse.")


class Prediction(NamedTuple, Generic[OutT]):
    output: OutT
    confidence: float
    tokens: int = 0


class Specialist(ABC, Generic[InT, OutT]):
    """A narrow model with a declared contract.

    Subclasses set the class attributes and implement :meth:`predict_batch`. Heavy set-up
    (loading weights) belongs in :meth:`load`, which the framework calls once, off the event
    loop, before the first prediction.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    input_model: ClassVar[type[BaseModel]]
    output_model: ClassVar[type[BaseModel]]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    #: Output keys that become fields of the run result; ``None`` means every key.
    summary_fields: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, options: BaseModel | dict[str, Any] | None = None) -> None:
        if options is None or isinstance(options, dict):
            options = self.options_model.model_validate(options or {})
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
        return self.verify(parsed_input, parsed_output)  # type: ignore[arg-type]

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
        )
