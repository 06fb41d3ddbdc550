"""The ``intent`` specialist: what the customer wants, from a declared label set."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.specialists._fewshot import LabelSpec, load_label_specs
from orchestrator.specialists._text_classifier import LabelScore, TextClassifier

__all__ = ["IntentOutput", "IntentSpecialist"]

_INTENTS = Path(__file__).parent / "data" / "support_intents.yaml"


class IntentOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="The most likely intent.")
    ranked: list[LabelScore] = Field(description="Intents with their scores, best first.")


class IntentSpecialist(TextClassifier):
    name: ClassVar[str] = "intent"
    description: ClassVar[str] = (
        "Classifies what a customer message asks for (billing, refund, cancel_subscription, "
        "order_status, technical_issue, account_access, product_question, or the graph's own "
        "intents), with a confidence. Input: {text}."
    )
    output_model: ClassVar[type[BaseModel]] = IntentOutput

    def default_labels(self) -> dict[str, LabelSpec]:
        return load_label_specs(_INTENTS)

    def make_output(self, ranked: list[LabelScore]) -> BaseModel:
        return IntentOutput(label=ranked[0].label, ranked=ranked)
