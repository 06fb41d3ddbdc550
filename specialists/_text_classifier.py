"""Shared body of the embedding-based text classifiers (intent, sentiment)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.specialists._base import Prediction, Specialist, TextInput
from orchestrator.specialists._fewshot import FewShotHead, LabelSpec
from orchestrator.specialists.encoder import TextEncoder, bundled_encoder

__all__ = ["ClassifierOptions", "LabelScore", "TextClassifier"]


class LabelScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    score: float = Field(ge=0.0, le=1.0)


class ClassifierOptions(BaseModel):
    """Options shared by the few-shot text classifiers."""

    model_config = ConfigDict(extra="forbid")
    labels: dict[str, LabelSpec] | None = Field(
        default=None,
        description="Replace the built-in label set: label -> description and examples.",
    )
    top_k: int = Field(default=3, ge=1, le=20, description="How many ranked labels to return.")


class TextClassifier(Specialist[TextInput, BaseModel]):
    """A few-shot head over the shared sentence encoder."""

    input_model: ClassVar[type[BaseModel]] = TextInput
    options_model: ClassVar[type[BaseModel]] = ClassifierOptions
    summary_fields: ClassVar[tuple[str, ...] | None] = ("label",)

    def __init__(self, options: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self._head: FewShotHead | None = None
        self._encoder: TextEncoder | None = None

    def default_labels(self) -> dict[str, LabelSpec]:
        raise NotImplementedError

    def label_specs(self) -> dict[str, LabelSpec]:
        opts = self.options
        assert isinstance(opts, ClassifierOptions)
        return opts.labels or self.default_labels()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.label_specs())

    @property
    def model_id(self) -> str:
        encoder_id = self._encoder.model_id if self._encoder else "bundled-encoder"
        return f"{self.name}:fewshot-head/{encoder_id}"

    def load(self) -> None:
        self._encoder = bundled_encoder()
        self._head = FewShotHead(self._encoder, self.label_specs())

    def make_output(self, ranked: list[LabelScore]) -> BaseModel:
        raise NotImplementedError

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[BaseModel]]:
        self.ensure_loaded()
        assert self._head is not None and self._encoder is not None
        texts = [i.text for i in inputs]
        probs = self._head.probabilities(texts)
        tokens = self._encoder.count_tokens(texts)
        opts = self.options
        assert isinstance(opts, ClassifierOptions)
        results: list[Prediction[BaseModel]] = []
        for row, count in zip(probs, tokens, strict=True):
            order = row.argsort()[::-1][: opts.top_k]
            ranked = [LabelScore(label=self._head.labels[i], score=float(row[i])) for i in order]
            results.append(Prediction(self.make_output(ranked), ranked[0].score, count))
        return results
