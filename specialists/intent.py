"""The ``intent`` specialist: what the customer wants, from a declared label set.

The built-in label set has an ``out_of_scope`` label of its own, described by off-topic
examples (trivia, chit-chat, weather, code, ...). Its head answers out of scope when that
label's calibrated probability reaches a threshold. Beside the label file ship its fitted
head (``data/support_intents.head.npz``: embedding a few hundred examples at every start
would cost seconds) and ``data/support_intents.fit.json``: the temperature and the threshold,
fitted on the tune part of the project's own evaluation set, and the hash of the label file
they belong to. When the label file no longer matches, the head is fitted as it loads and
the fitted values are not used.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._logging import get_logger
from orchestrator.specialists._fewshot import FewShotHead, LabelSpec, load_label_specs
from orchestrator.specialists._text_classifier import ClassifierOptions, LabelScore, TextClassifier
from orchestrator.specialists.artifacts import Artifact
from orchestrator.specialists.backends.encoder import TextEncoder

__all__ = [
    "BUILTIN_FIT",
    "BUILTIN_HEAD",
    "BUILTIN_INTENTS",
    "BUILTIN_OUT_OF_SCOPE",
    "IntentOptions",
    "IntentOutput",
    "IntentSpecialist",
    "OutOfScopeFit",
    "builtin_fit",
    "fit_intent_head",
    "labels_digest",
]

log = get_logger(__name__)

BUILTIN_INTENTS = Path(__file__).parent / "data" / "support_intents.yaml"
BUILTIN_HEAD = Path(__file__).parent / "data" / "support_intents.head.npz"
BUILTIN_FIT = Path(__file__).parent / "data" / "support_intents.fit.json"
#: The name of the off-topic label in the built-in label file.
BUILTIN_OUT_OF_SCOPE = "out_of_scope"
#: Out-of-scope threshold of a label set of one's own that has the out-of-scope label: the
#: answer is out of scope when that label is more likely than all the others together.
_DEFAULT_OOS_THRESHOLD = 0.5


class IntentOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(description="The most likely intent, or the out-of-scope label.")
    ranked: list[LabelScore] = Field(description="Labels with their scores, best first.")
    accepted: bool = Field(
        default=True,
        description="False when no intent was accepted: the label is then the out-of-scope "
        "label (off-topic, or every intent below the trained threshold).",
    )


class IntentOptions(ClassifierOptions):
    """Options of the intent specialist."""

    out_of_scope_label: str = Field(
        default="out_of_scope",
        min_length=1,
        description="The answer when the message asks for none of the intents.",
    )
    out_of_scope_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Answer the out-of-scope label when its probability is at least this. "
        "Default: the value fitted for the built-in labels; 0.5 for labels of your own that "
        "include the out-of-scope label (without it, no message is out of scope).",
    )


class OutOfScopeFit(BaseModel):
    """What was fitted for the built-in label file, on held-out messages."""

    model_config = ConfigDict(extra="forbid")
    labels_sha256: str = Field(description="SHA-256 of the label file these values belong to.")
    encoder: str = Field(description="The encoder the head ran on while fitting.")
    temperature: float = Field(gt=0.0, description="Divides the head's logits.")
    out_of_scope_threshold: float = Field(
        ge=0.0, le=1.0, description="Calibrated out-of-scope probability from which it answers."
    )
    fitted_on: str = Field(description="Which messages the values were fitted on.")
    tune_scores: dict[str, float] = Field(description="What the values achieved there.")


def labels_digest(path: Path = BUILTIN_INTENTS) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def builtin_fit() -> OutOfScopeFit:
    return OutOfScopeFit.model_validate(json.loads(BUILTIN_FIT.read_text(encoding="utf-8")))


def fit_intent_head(encoder: TextEncoder, labels: dict[str, LabelSpec]) -> FewShotHead:
    # Every label weighs the same: the off-topic label has many more examples than an intent.
    return FewShotHead.fit(encoder, labels, balanced=True)


class IntentSpecialist(TextClassifier[IntentOutput, IntentOptions]):
    name: ClassVar[str] = "intent"
    description: ClassVar[str] = (
        "Classifies what a customer message asks for (billing, refund, cancel_subscription, "
        "order_status, technical_issue, account_access, product_question, or the graph's own "
        "intents), with a confidence; a message that is not a support request at all is "
        "out_of_scope. Input: {text}."
    )

    _fit_in_use: OutOfScopeFit | None = None
    _oos_threshold: float | None = None

    @property
    def _oos(self) -> str:
        return self.options.out_of_scope_label

    def default_labels(self) -> dict[str, LabelSpec]:
        # The built-in off-topic label answers under the name the options give it.
        return {
            self._oos if label == BUILTIN_OUT_OF_SCOPE else label: spec
            for label, spec in load_label_specs(BUILTIN_INTENTS).items()
        }

    def _fitted(self, encoder: TextEncoder) -> OutOfScopeFit | None:
        """The shipped fit, when it holds: the built-in label file as it was fitted, on the
        encoder it was fitted with."""
        if self.options.labels is not None:
            return None
        fit = builtin_fit()
        if fit.encoder != encoder.model_id:
            return None
        if fit.labels_sha256 != labels_digest():
            log.warning(
                "the built-in intent labels changed since their head was fitted; fitting it "
                "now, without the fitted temperature and threshold",
                fix="python benchmarks/intent_out_of_scope.py --fit",
            )
            return None
        return fit

    def fewshot_head(self, encoder: TextEncoder) -> FewShotHead:
        fit = self._fit_in_use = self._fitted(encoder)
        if fit is None:
            return fit_intent_head(encoder, self.label_specs())
        head = FewShotHead.load(BUILTIN_HEAD, encoder, temperature=fit.temperature)
        head.labels = tuple(self._oos if x == BUILTIN_OUT_OF_SCOPE else x for x in head.labels)
        return head

    def load(self) -> None:
        super().load()
        if self.artifact is not None or self._oos not in self.label_specs():
            self._oos_threshold = None
            return
        fit = self._fit_in_use
        given = self.options.out_of_scope_threshold
        default = fit.out_of_scope_threshold if fit else _DEFAULT_OOS_THRESHOLD
        self._oos_threshold = default if given is None else given

    def decide_fewshot(self, ranked: list[LabelScore]) -> tuple[str, float, bool]:
        if self._oos_threshold is None:
            return super().decide_fewshot(ranked)
        off_topic = next(r.score for r in ranked if r.label == self._oos)
        if off_topic >= self._oos_threshold:
            return self._oos, off_topic, False
        best = next(r for r in ranked if r.label != self._oos)
        return best.label, best.score, True

    def answer_labels(self, trained: Artifact) -> tuple[str, ...]:
        in_scope = tuple(label for label in trained.labels if label != trained.oos_label)
        return (*in_scope, self._oos)

    def rename(self, label: str, trained: Artifact) -> str:
        return self._oos if label == trained.oos_label else label

    def decide(
        self, ranked: list[LabelScore], trained: Artifact, *, in_scope: bool = True
    ) -> tuple[str, float, bool]:
        top = ranked[0]
        if in_scope and top.label != self._oos and top.score >= trained.threshold:
            return top.label, top.score, True
        # Refusing is the answer here; its confidence is how unlikely every intent is.
        best_intent = next((r.score for r in ranked if r.label != self._oos), 0.0)
        return self._oos, 1.0 - best_intent, False

    def make_output(
        self, ranked: list[LabelScore], *, label: str | None = None, accepted: bool = True
    ) -> IntentOutput:
        return IntentOutput(label=label or ranked[0].label, ranked=ranked, accepted=accepted)
