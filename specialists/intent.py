"""The ``intent`` specialist: what the customer wants, from a declared label set."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.specialists._fewshot import LabelSpec, load_label_specs
from orchestrator.specialists._text_classifier import ClassifierOptions, LabelScore, TextClassifier
from orchestrator.specialists.artifacts import Artifact

__all__ = ["IntentOptions", "IntentOutput", "IntentSpecialist"]

_INTENTS = Path(__file__).parent / "data" / "support_intents.yaml"


class IntentOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="The most likely intent.")
    ranked: list[LabelScore] = Field(description="Intents with their scores, best first.")
    accepted: bool = Field(
        default=True,
        description="False when the calibrated confidence is below the trained threshold "
        "(the label is then the out-of-scope label).",
    )


class IntentOptions(ClassifierOptions):
    """Options of the intent specialist."""

    out_of_scope_label: str = Field(
        default="out_of_scope",
        min_length=1,
        description="The answer of a trained intent specialist when no intent is confident.",
    )


class IntentSpecialist(TextClassifier[IntentOutput, IntentOptions]):
    name: ClassVar[str] = "intent"
    description: ClassVar[str] = (
        "Classifies what a customer message asks for (billing, refund, cancel_subscription, "
        "order_status, technical_issue, account_access, product_question, or the graph's own "
        "intents), with a confidence. Input: {text}."
    )

    def default_labels(self) -> dict[str, LabelSpec]:
        return load_label_specs(_INTENTS)

    @property
    def _oos(self) -> str:
        return self.options.out_of_scope_label

    def answer_labels(self, trained: Artifact) -> tuple[str, ...]:
        in_scope = tuple(label for label in trained.labels if label != trained.oos_label)
        return (*in_scope, self._oos)

    def rename(self, label: str, trained: Artifact) -> str:
        return self._oos if label == trained.oos_label else label

    def decide(self, ranked: list[LabelScore], trained: Artifact) -> tuple[str, float, bool]:
        top = ranked[0]
        if top.label != self._oos and top.score >= trained.threshold:
            return top.label, top.score, True
        # Refusing is the answer here; its confidence is how unlikely every intent is.
        best_intent = next((r.score for r in ranked if r.label != self._oos), 0.0)
        return self._oos, 1.0 - best_intent, False

    def make_output(
        self, ranked: list[LabelScore], *, label: str | None = None, accepted: bool = True
    ) -> IntentOutput:
        return IntentOutput(label=label or ranked[0].label, ranked=ranked, accepted=accepted)
