"""The framework's logging: structlog on top of the standard library's :mod:`logging`.

The library is silent until configured: its loggers sit under the ``orchestrator`` stdlib
logger, which holds only a ``NullHandler`` until :func:`configure_logging` (the CLI calls it)
or the application's own logging configuration says where records go. Every configuration
redacts secrets: values under secret-looking keys and API keys or bearer tokens embedded in
any string, including rendered tracebacks.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO, cast

import structlog
from structlog.typing import (
    EventDict,
    ExceptionRenderer,
    FilteringBoundLogger,
    Processor,
    WrappedLogger,
)

from orchestrator._errors import InvalidArgumentError
from orchestrator._secrets import REDACTED, is_secret_name, mask_secrets, scrub_secrets

__all__ = [
    "configure_logging",
    "get_logger",
    "logging_configured",
    "mask_secrets",
    "redact_secrets",
]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _redact(value: Any, active: set[int]) -> Any:
    if isinstance(value, str):
        return scrub_secrets(value)
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return value
    if id(value) in active:
        return "<recursion>"
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            # A copy: the caller's bound dicts must not change because they were logged.
            return {
                key: REDACTED if is_secret_name(key) else _redact(item, active)
                for key, item in value.items()
            }
        items = [_redact(item, active) for item in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        return tuple(items) if isinstance(value, tuple) else frozenset(items)
    finally:
        active.discard(id(value))


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: redact secret-named keys (nested too) and secrets inside strings."""
    active: set[int] = set()
    for key, value in event_dict.items():
        if key == "exc_info":
            continue  # the exception renderer formats it; its output is masked there
        event_dict[key] = REDACTED if is_secret_name(key) else _redact(value, active)
    return event_dict


class _MaskRendered:
    """Wraps a renderer so that its final text is masked too (tracebacks, reprs)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method_name, event_dict)
        return scrub_secrets(rendered) if isinstance(rendered, str) else str(rendered)


def _logger_key(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Move the name :func:`get_logger` bound as ``logger_name`` to the ``logger`` key."""
    name = event_dict.pop("logger_name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    return event_dict


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or not a real file
        return False


def _console_exception_formatter(colors: bool) -> ExceptionRenderer:
    # Rich's default shows local variables, and those may hold credentials no pattern knows.
    if colors and importlib.util.find_spec("rich") is not None:
        return structlog.dev.RichTracebackFormatter(show_locals=False)
    return structlog.dev.plain_traceback


def _level_number(level: str) -> int:
    try:
        return _LEVELS[str(level).lower()]
    except KeyError:
        allowed = ", ".join(name.upper() for name in _LEVELS)
        raise InvalidArgumentError(f"unknown log level {level!r}; use one of {allowed}") from None


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (it may be swapped, by a
    test runner or an application, after logging was configured)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return _is_tty(sys.stderr)


def _stdlib_logger(name: str | None) -> logging.Logger:
    # Every framework logger lives under "orchestrator", so one handler (configure_logging's)
    # or one NullHandler (the default) governs them all.
    if name is None or name == _ROOT:
        return logging.getLogger(_ROOT)
    if name.startswith(_ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{_ROOT}.{name}")


def configure_logging(
    *, json: bool | None = None, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send the framework's logs to ``stream``; calling it again replaces the configuration.

    Until this is called the framework writes nothing (its loggers hold a ``NullHandler``, the
    standard library's convention); an application that configures :mod:`logging` itself
    receives the framework's records under the ``orchestrator`` logger instead.
    ``json=None`` writes JSON lines unless ``stream`` (default ``sys.stderr``) is a
    terminal, where a console renderer is used, coloured unless ``NO_COLOR`` is set.
    """
    threshold = _level_number(level)
    out: Any = _CurrentStderr() if stream is None else stream
    tty = _is_tty(out)
    use_json = not tty if json is None else json

    renderer: Processor
    processors: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if use_json:
        processors.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        # ConsoleRenderer formats exc_info itself; pairing it with format_exc_info warns.
        colors = tty and "NO_COLOR" not in os.environ
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=_console_exception_formatter(colors)
        )
    processors += [redact_secrets, _MaskRendered(renderer)]

    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=processors))
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger(_ROOT)
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    # Configured: the records are written here, not a second time by the application's root.
    root.propagate = False


_ROOT = "orchestrator"
_HANDLER_NAME = "orchestrator.configure_logging"
logging.getLogger(_ROOT).addHandler(logging.NullHandler())

_PRE_CHAIN: list[Processor] = [
    structlog.stdlib.filter_by_level,
    structlog.contextvars.merge_contextvars,
    _logger_key,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


def logging_configured() -> bool:
    """Whether anything but the default ``NullHandler`` would receive the framework's records."""
    logger: logging.Logger | None = logging.getLogger(_ROOT)
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return True
        logger = logger.parent if logger.propagate else None
    return False


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """The framework's logger for ``name`` (a module's ``__name__``): structlog on top of
    :mod:`logging`, silent until :func:`configure_logging` or the application's own logging
    configuration says where records go. Events carry ``logger=name`` when a name is given.

    Independent of the application's global structlog configuration, so a library user's
    ``structlog.configure`` never makes the framework print.
    """
    bound = structlog.wrap_logger(
        _stdlib_logger(name),
        processors=_PRE_CHAIN,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=True,
    )
    if name is not None:
        # `logger` itself cannot be an initial value (it clashes with wrap_logger's first
        # parameter); `_logger_key` renames it when rendering.
        bound = bound.bind(logger_name=name)
    return cast(FilteringBoundLogger, bound)
