"""Shared body of the embedding-based text classifiers (intent, sentiment).

Without an artifact the head is fitted at load time on the few-shot label specs. With one
(``options.artifact``: a directory, or a name in the artifact store) the trained head, its
calibration and its acceptance threshold are used instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeVar

from orchestrator._errors import ConfigurationError
from orchestrator.specialists._base import Prediction, Specialist, TextInput
from orchestrator.specialists._fewshot import FewShotHead, LabelSpec
from orchestrator.specialists.artifacts import (
    DEFAULT_STORE,
    Artifact,
    artifact_encoder,
    load_artifact,
)
from orchestrator.specialists.backends.batching import MicroBatcher
from orchestrator.specialists.backends.encoder import TextEncoder, Vectors, bundled_encoder
from orchestrator.specialists.rung_confidence import load_rung_confidences
from orchestrator.specialists.versions import VersionStore, parse_version_ref

__all__ = ["ClassifierOptions", "LabelScore", "TextClassifier"]


class LabelScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    score: float = Field(ge=0.0, le=1.0)


class ClassifierOptions(BaseModel):
    """Options shared by the text classifiers."""

    model_config = ConfigDict(extra="forbid")
    labels: dict[str, LabelSpec] | None = Field(
        default=None,
        description="Replace the built-in label set: label -> description and examples.",
    )
    top_k: int = Field(default=3, ge=1, le=20, description="How many ranked labels to return.")
    artifact: str | None = Field(
        default=None,
        description="A trained artifact: a directory, or a name in the artifact store "
        "(`orchestrator specialists train`). Replaces the few-shot head and `labels`.",
    )
    store: str | None = Field(
        default=None, description="Artifact store directory (default .orchestrator/specialists)."
    )
    micro_batch_wait_ms: float = Field(
        default=2.0,
        ge=0.0,
        le=50.0,
        description="Coalesce concurrent requests into one forward pass, waiting at most this "
        "long for company; 0 switches micro-batching off.",
    )


OutputT = TypeVar("OutputT", bound=BaseModel)
OptionsT = TypeVar("OptionsT", bound=ClassifierOptions, default=ClassifierOptions)


class TextClassifier(Specialist[TextInput, OutputT, OptionsT]):
    """A softmax head over the shared sentence encoder (few-shot or trained)."""

    summary_fields: ClassVar[tuple[str, ...] | None] = ("label",)

    def __init__(
        self,
        options: OptionsT | Mapping[str, Any] | None = None,
        *,
        encoder: TextEncoder | None = None,
    ) -> None:
        super().__init__(options)
        self._head: FewShotHead | None = None
        self._encoder: TextEncoder | None = encoder
        self._trained: Artifact | None = None
        self._stamp: tuple[int, int] | None = None
        self._batcher: MicroBatcher | None = None

    def default_labels(self) -> dict[str, LabelSpec]:
        raise NotImplementedError

    def label_specs(self) -> dict[str, LabelSpec]:
        return self.options.labels or self.default_labels()

    @property
    def acceptance_threshold(self) -> float | None:
        trained = self.artifact
        return trained.threshold if trained is not None else None

    @property
    def rung_confidences(self) -> dict[str, dict[str, Any]]:
        trained = self.artifact
        if trained is None:
            return {}
        return {k: v.to_json() for k, v in load_rung_confidences(trained.path).items()}

    @property
    def artifact(self) -> Artifact | None:
        """The trained artifact named in the options, or ``None``. A name without a version
        follows the promoted version: when the store promotes another one, the next call
        uses it (one ``stat`` of the store's index tells)."""
        name = self.options.artifact
        if not name:
            return None
        stamp = self._promotion_stamp(name)
        if self._trained is None or stamp != self._stamp:
            trained = load_artifact(name, self.options.store)
            if trained.specialist != self.name:
                raise ConfigurationError(
                    f"artifact {name!r} was trained for the {trained.specialist!r} "
                    f"specialist, not {self.name!r}"
                )
            if self._trained is not None and self._encoder is not None:
                self._follow_encoder(trained)
            self._trained, self._stamp = trained, stamp
        return self._trained

    def _promotion_stamp(self, name: str) -> tuple[int, int] | None:
        ref = parse_version_ref(name)
        if ref is None or ref.version is not None:
            return None  # a directory or a pinned version: it never changes
        return VersionStore(self.options.store or DEFAULT_STORE).stamp(ref.name)

    def _follow_encoder(self, trained: Artifact) -> None:
        """A newly promoted version may run another (fine-tuned) encoder: switch to it."""
        assert self._encoder is not None
        if trained.encoder_id == self._encoder.model_id:
            return
        self._encoder = artifact_encoder(trained)
        if self._batcher is not None:
            wait = self.options.micro_batch_wait_ms / 1000
            self._batcher = MicroBatcher(self._encoder.encode, max_wait_s=wait)

    def rename(self, label: str, trained: Artifact) -> str:
        """The name a trained label is answered under (identity by default)."""
        return label

    def answer_labels(self, trained: Artifact) -> tuple[str, ...]:
        """The labels the specialist can answer with when it uses `trained`."""
        return trained.labels

    @property
    def labels(self) -> tuple[str, ...]:
        trained = self.artifact
        return self.answer_labels(trained) if trained else tuple(self.label_specs())

    @property
    def model_id(self) -> str:
        encoder_id = self._encoder.model_id if self._encoder else "bundled-encoder"
        trained = self.artifact
        head = f"trained-head:{trained.ref}" if trained else "fewshot-head"
        return f"{self.name}:{head}/{encoder_id}"

    def load(self) -> None:
        trained = self.artifact
        if self._encoder is None:
            # A fine-tuned artifact carries its own encoder; otherwise the shared bundled one.
            self._encoder = artifact_encoder(trained) if trained else bundled_encoder()
        if trained is not None and trained.encoder_id != self._encoder.model_id:
            raise ConfigurationError(
                f"artifact {trained.name!r} was trained on encoder {trained.encoder_id!r}, "
                f"but this specialist runs {self._encoder.model_id!r}; train it again"
            )
        if trained is None:
            self._head = self.fewshot_head(self._encoder)
        wait = self.options.micro_batch_wait_ms
        if wait > 0:
            self._batcher = MicroBatcher(self._encoder.encode, max_wait_s=wait / 1000)

    def make_output(
        self, ranked: list[LabelScore], *, label: str | None = None, accepted: bool = True
    ) -> OutputT:
        raise NotImplementedError

    def decide(
        self, ranked: list[LabelScore], trained: Artifact, *, in_scope: bool = True
    ) -> tuple[str, float, bool]:
        """The answer, its confidence, and whether it is accepted: it clears the artifact's
        threshold and the artifact's out-of-scope detector did not refuse it (``in_scope``)."""
        top = ranked[0]
        return top.label, top.score, in_scope and top.score >= trained.threshold

    def fewshot_head(self, encoder: TextEncoder) -> FewShotHead:
        """The head used without an artifact: fitted on the label specs as it loads."""
        return FewShotHead.fit(encoder, self.label_specs())

    def decide_fewshot(self, ranked: list[LabelScore]) -> tuple[str, float, bool]:
        """The few-shot head's answer, its confidence, and whether it is accepted."""
        top = ranked[0]
        return top.label, top.score, True

    def _encode(self, texts: Sequence[str]) -> Vectors:
        assert self._encoder is not None
        return self._batcher(texts) if self._batcher else self._encoder.encode(texts)

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[OutputT]]:
        self.ensure_loaded()
        assert self._encoder is not None
        texts = [i.text for i in inputs]
        features = self._encode(texts)
        trained = self.artifact
        refused = np.zeros(len(texts), dtype=bool)
        if trained is not None:
            probs = trained.probabilities(features)
            names = tuple(self.rename(label, trained) for label in trained.labels)
            if trained.out_of_scope is not None:
                refused = trained.out_of_scope.refuses(features, probs)
        else:
            assert self._head is not None
            probs, names = self._head.probabilities_of(features), self._head.labels
        tokens = self._encoder.count_tokens(texts)
        results: list[Prediction[OutputT]] = []
        for row, count, out in zip(probs, tokens, refused, strict=True):
            order = row.argsort()[::-1]
            ranked = [LabelScore(label=names[i], score=float(row[i])) for i in order]
            label, confidence, accepted = (
                self.decide(ranked, trained, in_scope=not out)
                if trained
                else self.decide_fewshot(ranked)
            )
            output = self.make_output(ranked[: self.options.top_k], label=label, accepted=accepted)
            results.append(Prediction(output, confidence, count))
        return results
