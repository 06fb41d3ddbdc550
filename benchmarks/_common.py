"""Helpers shared by the benchmark scripts: statistics, output, real inputs, Postgres.

Not a public module: the scripts import it from their own folder (``python benchmarks/x.py``
puts ``benchmarks/`` first on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); enough for a few hundred samples."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and min/max of the per-repeat values: the median is what we report, the range
    says how much the shared machine moved it."""
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def fmt_spread(value: dict[str, float], unit: str = "", digits: int = 2) -> str:
    return (
        f"{value['median']:.{digits}f}{unit} [{value['min']:.{digits}f}-{value['max']:.{digits}f}]"
    )


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    # Wide enough for the spreads; a narrow terminal would cut them.
    Console(width=max(160, shutil.get_terminal_size().columns)).print(table)


def write_json(name: str, payload: dict[str, Any], path: str | None) -> Path:
    """Write the results as JSON (default: benchmarks/results/NAME.json) and return the path."""
    target = Path(path) if path else RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return target


def support_messages(n: int, *, seed_offset: int = 0) -> list[str]:
    """Real customer messages: Banking77 and CLINC150 test utterances, interleaved.

    Falls back to generated tickets when ../shared/data is not there, so the scripts still
    run on a machine without the datasets (the output says which was used).
    """
    texts: list[str] = []
    banking = DATA_DIR / "banking77" / "test.csv"
    clinc = DATA_DIR / "clinc150" / "data_full.json"
    if banking.is_file():
        with banking.open(encoding="utf-8", newline="") as fh:
            texts.extend(row["text"] for row in csv.DictReader(fh))
    if clinc.is_file():
        data = json.loads(clinc.read_text(encoding="utf-8"))
        clinc_texts = [text for text, _ in data.get("test", [])]
        # Interleave, so any prefix holds both datasets.
        mixed: list[str] = []
        for i in range(max(len(texts), len(clinc_texts))):
            if i < len(texts):
                mixed.append(texts[i])
            if i < len(clinc_texts):
                mixed.append(clinc_texts[i])
        texts = mixed
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if len(texts) < n + seed_offset:
        texts += [f"Ticket {i}: my order is wrong, please help" for i in range(n + seed_offset)]
    return texts[seed_offset : seed_offset + n]


def data_source() -> str:
    found = [d for d in ("banking77", "clinc150") if (DATA_DIR / d).is_dir()]
    return f"{', '.join(found)} test utterances" if found else "generated tickets"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A temporary PostgreSQL cluster on 127.0.0.1 (the tests' own), yielding its DSN
    (``None`` when PostgreSQL is not installed or does not start). Removed on exit."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.pg_cluster import throwaway_cluster

    cluster = throwaway_cluster()
    try:
        started = cluster.__enter__()
    except RuntimeError as exc:
        print(f"no PostgreSQL: {exc}", file=sys.stderr)
        yield None
        return
    try:
        yield started.url
    finally:
        cluster.__exit__(None, None, None)


def fit_logistic(x: Any, y: Any, weight: Any, steps: int = 4000) -> Any:
    """Weighted logistic regression by gradient descent with a small L2 penalty: the
    weights of each column of ``x`` and, last, the bias (numpy arrays in and out)."""
    import numpy as np

    xb = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-xb @ theta))
        grad = xb.T @ (weight * (p - y)) / weight.sum() + 1e-3 * np.r_[theta[:-1], 0.0]
        theta -= 2.0 * grad
    return theta
