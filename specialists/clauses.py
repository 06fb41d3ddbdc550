"""The ``clauses`` specialist: which CUAD clause categories a contract contains, and where.

It needs a trained artifact (``orchestrator specialists train clauses --format cuad --data
DIR``): extracting legal clauses from a few hand-written examples would give confidences
that mean nothing, so without an artifact :meth:`ClausesSpecialist.load` says how to train
one instead of answering. Every span it returns carries character offsets into the input;
:meth:`ClausesSpecialist.verify` checks that each span is found verbatim at its offsets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._errors import ConfigurationError
from orchestrator.specialists._base import Prediction, Specialist
from orchestrator.specialists.artifacts import DEFAULT_STORE
from orchestrator.specialists.clause_model import (
    CUAD_CATEGORIES,
    ClauseModel,
    load_clause_model,
    narrow,
)

__all__ = [
    "CategoryResult",
    "ClauseSpan",
    "ClausesOptions",
    "ClausesOutput",
    "ClausesSpecialist",
    "ContractInput",
]

TRAIN_COMMAND = "orchestrator specialists train clauses --format cuad --data PATH/TO/CUAD"


class ContractInput(BaseModel):
    """The input of the clauses specialist: a whole contract."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=2_000_000, description="The contract's plain text.")


class ClauseSpan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=0, description="Offset of the first character in the input text.")
    end: int = Field(ge=0, description="Offset just past the last character.")
    text: str = Field(description="The span: exactly text[start:end] of the input.")
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated probability.")


class CategoryResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    present: bool = Field(description="Whether the contract has a clause of this category.")
    confidence: float = Field(
        ge=0.0, le=1.0, description="Calibrated probability of the `present` answer."
    )
    spans: list[ClauseSpan] = Field(
        default_factory=list, description="Where the clauses are, most probable first."
    )


class ClausesOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    found: list[str] = Field(description="Categories present in the contract.")
    categories: dict[str, CategoryResult] = Field(
        description="Every category, present or absent, with its spans."
    )


class ClausesOptions(BaseModel):
    """Options of the clauses specialist."""

    model_config = ConfigDict(extra="forbid")
    artifact: str = Field(
        default="clauses",
        description="A trained artifact: a directory, or a name in the artifact store.",
    )
    store: str | None = Field(
        default=None, description="Artifact store directory (default .orchestrator/specialists)."
    )
    max_spans: int = Field(default=5, ge=1, le=100, description="Most spans reported per category.")


class ClausesSpecialist(Specialist[ContractInput, ClausesOutput, ClausesOptions]):
    name: ClassVar[str] = "clauses"
    description: ClassVar[str] = (
        "Finds the clauses of a contract in CUAD's 41 categories (governing law, "
        "termination for convenience, non-compete, cap on liability, ...): for each category "
        "whether it is present, with a calibrated confidence, and the spans with their "
        "character offsets. Input: {text} (a whole contract)."
    )
    summary_fields: ClassVar[tuple[str, ...] | None] = ("found",)

    def __init__(self, options: ClausesOptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._model: ClauseModel | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return self._model.categories if self._model is not None else CUAD_CATEGORIES

    @property
    def model_id(self) -> str:
        return f"clauses:{self._model.name if self._model else self.options.artifact}"

    def load(self) -> None:
        try:
            self._model = load_clause_model(self.options.artifact, self.options.store)
        except ConfigurationError as exc:
            if "no trained artifact" not in str(exc):
                raise
            store = self.options.store or DEFAULT_STORE
            raise ConfigurationError(
                f"the clauses specialist has no trained model: no artifact "
                f"{self.options.artifact!r} (a directory, or a name in the store {store}). "
                f"Train one with `{TRAIN_COMMAND}` (CUAD v1: master_clauses.csv and "
                "full_contract_txt/), or set the `artifact` option"
            ) from None

    def predict_batch(self, inputs: Sequence[ContractInput]) -> list[Prediction[ClausesOutput]]:
        self.ensure_loaded()
        assert self._model is not None
        model = self._model
        results: list[Prediction[ClausesOutput]] = []
        for item in inputs:
            text = item.text
            scored = model.score(text)
            categories: dict[str, CategoryResult] = {}
            decided: list[float] = []
            for j, category in enumerate(model.categories):
                p = float(scored.presence[j])
                present = p >= float(model.presence_threshold[j])
                spans: list[ClauseSpan] = []
                if present and scored.spans:
                    probs = scored.probabilities[:, j]
                    order = probs.argsort()[::-1][: self.options.max_spans]
                    keep = [k for k in order if probs[k] >= model.span_threshold[j]]
                    for k in keep or order[:1]:
                        start, end = narrow(category, text, *scored.spans[k])
                        spans.append(
                            ClauseSpan(
                                start=start,
                                end=end,
                                text=text[start:end],
                                confidence=float(probs[k]),
                            )
                        )
                confidence = p if present else 1.0 - p
                decided.append(confidence)
                categories[category] = CategoryResult(
                    present=present, confidence=confidence, spans=spans
                )
            output = ClausesOutput(
                found=[c for c, r in categories.items() if r.present], categories=categories
            )
            # The answer as a whole is as sure as its average category decision.
            confidence = sum(decided) / len(decided) if decided else 0.0
            results.append(Prediction(output, confidence, len(text.split())))
        return results

    def verify(self, input: ContractInput, output: ClausesOutput) -> list[str]:
        """Every span must be found verbatim at its offsets, in a known category; a category
        marked absent has no spans."""
        problems: list[str] = []
        text = input.text
        known = set(self.labels)
        for category, result in output.categories.items():
            if category not in known:
                problems.append(f"unknown category {category!r}")
            if not result.present and result.spans:
                problems.append(f"{category}: marked absent but has {len(result.spans)} span(s)")
            for span in result.spans:
                if not 0 <= span.start < span.end <= len(text):
                    problems.append(
                        f"{category}: span [{span.start}, {span.end}) is outside the input "
                        f"(length {len(text)})"
                    )
                elif text[span.start : span.end] != span.text:
                    problems.append(
                        f"{category}: span [{span.start}, {span.end}) is not in the source "
                        f"verbatim (source has {text[span.start : span.end][:40]!r}, span says "
                        f"{span.text[:40]!r})"
                    )
        missing = sorted(set(output.found) - {c for c, r in output.categories.items() if r.present})
        if missing:
            problems.append(f"found lists categories not marked present: {missing[:3]}")
        return problems
