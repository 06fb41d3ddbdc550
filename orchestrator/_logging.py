"""structlog configuration for the framework.

Importing this module configures nothing; call :func:`configure_logging` once at start-up
(the CLI does). Every configuration redacts secrets: values under secret-looking keys and
API keys or bearer tokens embedded in any string, including rendered tracebacks.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
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

__all__ = ["configure_logging", "get_logger", "mask_secrets", "redact_secrets"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}

REDACTED = "***"

# Key names are split into words (snake, kebab or camel case) before matching, so that
# `input_tokens` or `token_count` stay visible while `access_token` or `X-Api-Key` do not.
_SECRET_LAST_WORDS = frozenset(
    {
        "apikey",
        "authorization",
        "bearer",
        "cookie",
        "credential",
        "credentials",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "token",
    }
)
_SECRET_SUFFIXES = (
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "signingkey",
    "accesstoken",
    "authtoken",
    "refreshtoken",
    "sessiontoken",
    "clientsecret",
    "authorization",
    "password",
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

_SECRET_NAME = (
    r"(?:x-)?api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token"
    r"|client[_-]?secret|secret|token|password|passwd"
)
# Backslashes and quotes are never swallowed, so masking a rendered JSON line keeps it valid.
_STRING_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}"), "sk-ant-***"),
    (re.compile(r"\bsk-(?!ant-)[A-Za-z0-9_\-]{17,}"), "sk-***"),
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), r"\1 ***"),
    (re.compile(rf"(?i)\b((?:{_SECRET_NAME})=)[^&\s'\",;\\]+"), r"\1***"),
    (
        re.compile(rf"(?i)(['\"](?:{_SECRET_NAME}|authorization)['\"]\s*:\s*['\"])[^'\"\\]+"),
        r"\1***",
    ),
)


def _is_secret_key(key: object) -> bool:
    words = [w for w in _NON_ALNUM.split(_CAMEL_BOUNDARY.sub("_", str(key)).lower()) if w]
    if not words:
        return False
    compact = "".join(words)
    return words[-1] in _SECRET_LAST_WORDS or compact.endswith(_SECRET_SUFFIXES)


def mask_secrets(text: str) -> str:
    """Mask API keys, bearer tokens and ``password=...``-style values inside ``text``."""
    for pattern, replacement in _STRING_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any, active: set[int]) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if not isinstance(value, Mapping | list | tuple | set | frozenset):
        return value
    if id(value) in active:
        return "<recursion>"
    active.add(id(value))
    try:
        if isinstance(value, Mapping):
            # A copy: the caller's bound dicts must not change because they were logged.
            return {
                key: REDACTED if _is_secret_key(key) else _redact(item, active)
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
        event_dict[key] = REDACTED if _is_secret_key(key) else _redact(value, active)
    return event_dict


class _MaskRendered:
    """Wraps a renderer so that its final text is masked too (tracebacks, reprs)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method_name, event_dict)
        return mask_secrets(rendered) if isinstance(rendered, str) else str(rendered)


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


def configure_logging(
    *, json: bool | None = None, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Configure structlog for the process; calling it again replaces the configuration.

    ``json=None`` writes JSON lines unless ``stream`` (default ``sys.stderr``) is a
    terminal, where a console renderer is used, coloured unless ``NO_COLOR`` is set.
    """
    threshold = _level_number(level)
    out: Any = _CurrentStderr() if stream is None else stream
    tty = _is_tty(out)
    use_json = not tty if json is None else json

    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _logger_key,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
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

    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        context_class=dict,
        # Not cached, so loggers taken before a reconfiguration follow the new one.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A lazy structlog logger; its events carry ``logger=name`` when a name is given.

    The logger follows later calls to :func:`configure_logging`, so module-level loggers
    created at import time are fine.
    """
    if name is None:
        return cast(FilteringBoundLogger, structlog.get_logger())
    # `logger` itself cannot be an initial value (it clashes with wrap_logger's first
    # parameter) and `.bind()` would freeze the current configuration; `_logger_key`
    # renames it when rendering, and the console renderer reads `logger_name` natively.
    return cast(FilteringBoundLogger, structlog.get_logger(logger_name=name))
