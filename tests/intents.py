"""Small intent data the tests write themselves: four labels, five phrasings each, filled with
city names (each split gets its own cities)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATTERNS = {
    "weather": [
        "what is the weather in {c}",
        "will it rain in {c} tomorrow",
        "how hot is it in {c} today",
        "is it snowing in {c}",
        "do I need an umbrella in {c}",
    ],
    "flights": [
        "book a flight to {c}",
        "find flights from here to {c}",
        "cheapest plane ticket to {c}",
        "when does the next plane to {c} leave",
        "I want to fly to {c} on friday",
    ],
    "music": [
        "play some jazz from {c}",
        "put on a song by a band from {c}",
        "play the radio station of {c}",
        "start my playlist about {c}",
        "play music that sounds like {c}",
    ],
    "restaurants": [
        "find a restaurant in {c}",
        "where can I eat sushi in {c}",
        "book a table for two in {c}",
        "best pizza place in {c}",
        "is there a vegan cafe in {c}",
    ],
}
#: Ways of asking that share no key word with PATTERNS: a specialist trained on PATTERNS
#: alone is unsure of them, and often wrong (the traffic its teacher labels).
PARAPHRASES = {
    "weather": [
        "should I pack a coat for {c}",
        "what is it like outside in {c} right now",
        "any storms coming to {c}",
    ],
    "flights": [
        "get me out to {c} by air",
        "are there seats to {c} next week",
        "how long is the trip by air to {c}",
    ],
    "music": [
        "I want to hear something from {c}",
        "turn up some tunes from {c}",
        "any good albums recorded in {c}",
    ],
    "restaurants": [
        "I am hungry in {c}",
        "dinner reservations in {c}",
        "where do locals eat in {c}",
    ],
}

#: The nodes and edges of a graph that runs its ``intent`` binding once (append to a graph's
#: name and specialists).
TRIAGE = """\
nodes:
  triage:
    kind: specialists
    subtasks:
      - {id: intent, specialist: intent}
edges:
  - {from: START, to: triage}
  - {from: triage, to: END}
"""

_PLACES = [
    "paris",
    "tokyo",
    "lima",
    "oslo",
    "cairo",
    "rome",
    "delhi",
    "quito",
    "madrid",
    "berlin",
    "vienna",
    "prague",
    "warsaw",
    "athens",
    "lisbon",
    "bogota",
    "santiago",
    "caracas",
    "manila",
    "jakarta",
    "hanoi",
    "bangkok",
    "beijing",
    "shanghai",
    "mumbai",
    "karachi",
    "tehran",
    "baghdad",
    "riyadh",
    "dubai",
    "accra",
    "seoul",
    "perth",
    "sydney",
    "auckland",
    "toronto",
    "chicago",
    "boston",
    "denver",
    "dublin",
    "nairobi",
    "havana",
]
CITIES = {"train": _PLACES[:30], "val": _PLACES[30:38], "test": _PLACES[38:]}


def write_intent_splits(
    folder: Path, *, patterns: slice = slice(None), cities: dict[str, list[str]] | None = None
) -> Path:
    """train/val/test JSONL files in `folder`: every label's patterns (the `patterns` slice of
    them) filled with each split's cities."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, names in (cities or CITIES).items():
        rows = intent_rows(names, patterns)
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def intent_rows(
    cities: list[str],
    patterns: slice = slice(None),
    phrasings: dict[str, list[str]] = PATTERNS,
) -> list[dict[str, str]]:
    """{"text", "label"} rows: the labels' `phrasings` (a slice of them) with each city."""
    return [
        {"text": pattern.format(c=city), "label": label}
        for label, shapes in phrasings.items()
        for pattern in shapes[patterns]
        for city in cities
    ]


def train_intent_artifact(root: Path, name: str, *, patterns: slice) -> Path:
    """An intent artifact `name` in ``root/store``, trained on the train split's `patterns`
    (the base data) and validated on every phrasing of the validation cities, which is how
    traffic looks (160 texts: enough for the lower bound of a 97% precision)."""
    from orchestrator.cli.main import main

    data = write_intent_splits(root / "data", patterns=patterns)
    rows = intent_rows(CITIES["val"])
    (data / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = ["specialists", "train", name, "--data", str(data), "--format", "jsonl"]
    where = ["--store", str(root / "store"), "--cache-dir", str(root / "cache")]
    assert main([*train, "--specialist", "intent", *where, "--json"]) == 0
    return root


def record_teacher_labels(
    state: Path | Any, rows: list[dict[str, str]], teacher: dict[str, str] | None = None
) -> int:
    """Record `rows` in the trace store of `state` (a state directory, or an open trace
    store) as escalated subtasks of the ``intent`` binding (artifact ``demo``) that a
    scripted frontier teacher answered; ``teacher`` renames labels (a teacher that gets some
    intents wrong). Returns how many."""
    from orchestrator._traces import Trace, open_trace_store

    store = open_trace_store(state) if isinstance(state, Path) else state
    store.add(
        [
            Trace(
                id=f"trace-{i}",  # fixed ids: the gate's held-out slice is the same in every run
                run_id=f"run-{i}",
                subtask_id="intent",
                specialist="intent",
                artifact="demo",
                input={"text": row["text"]},
                answer={"label": "out_of_scope"},
                confidence=0.3,
                verdict="confidence 0.30 is below 0.80",
                final={"label": (teacher or {}).get(row["label"], row["label"])},
                source="frontier",
                rung="frontier",
            )
            for i, row in enumerate(rows)
        ]
    )
    store.close()
    return len(rows)
