"""Secrets kept out of everything the framework stores or shows.

One scrubber, :func:`scrub_secrets`, serves the logs, the errors a run stores in its state
(and so in its checkpoints) and the results it returns: it masks API keys and bearer tokens
by their shape, ``password=...``-style values, and the values of the environment variables
that hold keys (any secret-looking name, and those a graph names: the frontier model's key
variable, an MCP server's token variable). A provider that echoes the key it was sent in an
error message (a 401 body) then leaves no copy of it behind.
"""

from __future__ import annotations

import functools
import os
import re

__all__ = [
    "REDACTED",
    "is_secret_name",
    "mask_secrets",
    "register_secret",
    "register_secret_env",
    "scrub_secrets",
]

REDACTED = "***"

#: Environment values shorter than this are not masked: they cannot be a key, and masking
#: every "1" or "true" in a message would make it unreadable.
_MIN_SECRET_VALUE = 8
_configured: set[str] = set()
_given: set[str] = set()


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
    # The password in a URL's user part: postgresql://user:PASSWORD@host/db
    (re.compile(r"(://[^:/@\s'\"\\]+:)[^@\s'\"\\/]+@"), r"\1***@"),
    (
        re.compile(rf"(?i)(['\"](?:{_SECRET_NAME}|authorization)['\"]\s*:\s*['\"])[^'\"\\]+"),
        r"\1***",
    ),
)


@functools.lru_cache(maxsize=4096)
def is_secret_name(key: object) -> bool:
    """Whether a key or variable name names a secret (``api_key``, ``X-Api-Key``,
    ``ANTHROPIC_API_KEY``; not ``input_tokens``)."""
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


def register_secret_env(name: str) -> None:
    """Mask the value of the environment variable `name` wherever a secret is scrubbed,
    whatever its name (a graph may keep its key in ``LLM_ACCESS``)."""
    _configured.add(name)


def register_secret(value: str) -> None:
    """Mask `value` wherever a secret is scrubbed (a key given in code, not through the
    environment)."""
    if len(value) >= _MIN_SECRET_VALUE:
        _given.add(value)


def _secret_values() -> list[str]:
    values = _given | {
        value
        for name, value in os.environ.items()
        if len(value) >= _MIN_SECRET_VALUE and (name in _configured or is_secret_name(name))
    }
    # Longest first: a key that contains another is masked whole.
    return sorted(values, key=len, reverse=True)


def scrub_secrets(text: str) -> str:
    """`text` with every secret masked: key variables' values, then key and token shapes."""
    for value in _secret_values():
        if value in text:
            text = text.replace(value, REDACTED)
    return mask_secrets(text)
