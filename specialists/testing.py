"""Test doubles: a specialist whose answers, delays and failures are scripted.

Use it to test graph files and code that uses orchestrator without loading models::

    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(ScriptedSpecialist)
    spec = GraphSpec.from_text(yaml_text, registry=registry)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._errors import SpecialistError, ToolTransportError
from orchestrator.specialists._base import Prediction, Specialist, TextInput

__all__ = ["ScriptedAnswer", "ScriptedOptions", "ScriptedOutput", "ScriptedSpecialist"]


class ScriptedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    confidence: float = Field(default=0.9, ge=0, le=1)


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, ScriptedAnswer] = Field(
        default_factory=dict, description="Substring of the input text -> the answer to give."
    )
    default: ScriptedAnswer = Field(default_factory=lambda: ScriptedAnswer(label="other"))
    labels: list[str] | None = Field(default=None, description="The closed label set, if any.")
    delay_s: float = Field(default=0.0, ge=0, description="Sleep this long before answering.")
    fail: Literal["never", "always", "first"] = "never"
    fail_with: Literal["transport", "specialist", "crash"] = "transport"
    log_file: str | None = Field(default=None, description="Append each input text here.")
    rungs: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Escalation rungs' fitted confidences to publish, as a trained "
        "artifact's rungs.json holds them.",
    )


class ScriptedOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    text: str


class ScriptedSpecialist(Specialist[TextInput, ScriptedOutput, ScriptedOptions]):
    name: ClassVar[str] = "scripted"
    description: ClassVar[str] = "Answers from a script; for tests. Input: {text}."
    summary_fields: ClassVar[tuple[str, ...] | None] = ("label",)

    def __init__(self, options: ScriptedOptions | Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return "scripted-v1"

    @property
    def rung_confidences(self) -> dict[str, dict[str, Any]]:
        return dict(self.options.rungs)

    @property
    def labels(self) -> tuple[str, ...] | None:
        return tuple(self.options.labels) if self.options.labels is not None else None

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[ScriptedOutput]]:
        opts = self.options
        with self._lock:
            self.calls += 1
            call = self.calls
        if opts.log_file:
            with open(opts.log_file, "a", encoding="utf-8") as log:
                log.writelines(f"{i.text}\n" for i in inputs)
        if opts.delay_s:
            time.sleep(opts.delay_s)
        if opts.fail == "always" or (opts.fail == "first" and call == 1):
            if opts.fail_with == "transport":
                raise ToolTransportError("scripted transport failure")
            if opts.fail_with == "specialist":
                raise SpecialistError("scripted specialist failure")
            raise RuntimeError("scripted crash")
        results = []
        for item in inputs:
            answer = next((a for key, a in opts.answers.items() if key in item.text), opts.default)
            results.append(
                Prediction(
                    ScriptedOutput(label=answer.label, text=item.text),
                    answer.confidence,
                    len(item.text.split()),
                )
            )
        return results
