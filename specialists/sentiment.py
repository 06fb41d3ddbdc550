"""The ``sentiment`` specialist: negative, neutral or positive."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.specialists._fewshot import LabelSpec, load_label_specs
from orchestrator.specialists._text_classifier import LabelScore, TextClassifier

__all__ = ["SentimentOutput", "SentimentSpecialist"]

_EXAMPLES = Path(__file__).parent / "data" / "sentiment_examples.yaml"


class SentimentOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="negative, neutral or positive (or a custom label).")
    ranked: list[LabelScore] = Field(description="Labels with their scores, best first.")
    accepted: bool = Field(
        default=True,
        description="False when the calibrated confidence is below the trained threshold.",
    )


class SentimentSpecialist(TextClassifier[SentimentOutput]):
    name: ClassVar[str] = "sentiment"
    description: ClassVar[str] = (
        "Classifies the sentiment a text expresses as negative, neutral or positive, with a "
        "confidence. Input: {text}."
    )

    def default_labels(self) -> dict[str, LabelSpec]:
        return load_label_specs(_EXAMPLES)

    def make_output(
        self, ranked: list[LabelScore], *, label: str | None = None, accepted: bool = True
    ) -> SentimentOutput:
        return SentimentOutput(label=label or ranked[0].label, ranked=ranked, accepted=accepted)
