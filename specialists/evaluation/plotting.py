"""matplotlib for the PNG plots of evaluations (the `eval` extra), on a file-only backend."""

from __future__ import annotations

from typing import Any

from orchestrator._errors import ConfigurationError

__all__ = ["pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the Agg backend (no display needed), or a clear error when
    the `eval` extra is not installed."""
    try:
        import matplotlib
    except ImportError:
        hint = "plots need matplotlib: pip install 'specialist-orchestrator[eval]'"
        raise ConfigurationError(hint) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
