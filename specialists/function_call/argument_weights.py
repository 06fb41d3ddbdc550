"""The weights that turn a mention's features into its fit for a parameter.

They are fitted (``benchmarks/fit_function_call_arguments.py``) on tuning data only: the first
halves of BFCL's files and the tune part of the project's assistant requests. Each weight is the
log-odds a feature adds to "this mention is the parameter's value", so a parameter's candidates
give probabilities through a softmax over their scores, and leaving the parameter out is one more
candidate. The file records what they were fitted on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["ARGUMENT_WEIGHTS", "ArgumentWeights", "load_argument_weights", "share_of"]

_FILE = "function_call_arguments.json"


@dataclass(frozen=True)
class ArgumentWeights:
    """Per-feature weights, the score of leaving a required or an optional parameter out, and
    the bonus for values written in the order the function lists its parameters."""

    features: Mapping[str, float]
    left_out_required: float
    left_out_optional: float
    order: float
    fitted_on: Mapping[str, Any] = field(default_factory=dict)

    def score(self, features: Mapping[str, float]) -> float:
        weights = self.features
        return sum(weights.get(name, 0.0) * value for name, value in features.items())

    def left_out(self, required: bool) -> float:
        return self.left_out_required if required else self.left_out_optional

    def to_json(self) -> dict[str, Any]:
        return {
            "features": dict(sorted(self.features.items())),
            "left_out_required": self.left_out_required,
            "left_out_optional": self.left_out_optional,
            "order": self.order,
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArgumentWeights:
        return cls(
            features={str(k): float(v) for k, v in data["features"].items()},
            left_out_required=float(data["left_out_required"]),
            left_out_optional=float(data["left_out_optional"]),
            order=float(data["order"]),
            fitted_on=dict(data.get("fitted_on", {})),
        )


def share_of(picked: float, scores: Sequence[float]) -> float:
    """The probability of the option scored ``picked`` among all of ``scores`` (which hold
    it): the softmax of log-odds."""
    top = max(scores)
    return math.exp(picked - top) / sum(math.exp(s - top) for s in scores)


def load_argument_weights() -> ArgumentWeights:
    text = resources.files("orchestrator.specialists").joinpath("data", _FILE).read_text()
    return ArgumentWeights.from_json(json.loads(text))


ARGUMENT_WEIGHTS = load_argument_weights()
