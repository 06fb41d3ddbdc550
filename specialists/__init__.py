"""Specialists: small models behind typed contracts, and the registry that names them."""

from orchestrator.specialists._base import (
    AnySpecialist,
    NoOptions,
    Prediction,
    Specialist,
    TextInput,
)
from orchestrator.specialists._fewshot import LabelSpec
from orchestrator.specialists._registry import (
    SpecialistRegistry,
    default_registry,
    register_specialist,
)

__all__ = [
    "AnySpecialist",
    "LabelSpec",
    "NoOptions",
    "Prediction",
    "Specialist",
    "SpecialistRegistry",
    "TextInput",
    "default_registry",
    "register_specialist",
]
