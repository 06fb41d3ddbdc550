"""Small intent data the tests write themselves: four labels, five phrasings each, filled with
city names (each split gets its own cities)."""

from __future__ import annotations

import json
from pathlib import Path

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


def intent_rows(cities: list[str], patterns: slice = slice(None)) -> list[dict[str, str]]:
    """{"text", "label"} rows: the labels' patterns (a slice of them) with each city."""
    return [
        {"text": pattern.format(c=city), "label": label}
        for label, shapes in PATTERNS.items()
        for pattern in shapes[patterns]
        for city in cities
    ]
