"""Out-of-scope in the built-in intent specialist: in-scope accuracy and off-topic recall.

Rows: the tune and test parts of the project's own evaluation set
(``specialists/evaluation/data/support_intents_eval.yaml``; ``test`` is the headline, the
values were fitted on ``tune``), and CLINC150's test split read in the built-in labels'
terms: its ``oos_test`` queries, the intents that map onto a built-in intent, and the
domains with nothing a support desk handles (small talk, utility). Also the expected
calibration error of the confidence on each row.

    python benchmarks/intent_out_of_scope.py [--fit] [--misses] [--json] [--data DIR]

``--misses`` lists the tune part's wrong answers. ``--fit`` refits the head, the temperature
and the out-of-scope threshold first (``specialists/data/support_intents.fit.json`` and the
head beside it). Without CLINC150 in ``--data`` (default ``../shared/data/clinc150``) its
rows are skipped and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _common import DATA_DIR, machine, print_table

from orchestrator import configure_logging
from orchestrator.specialists import default_registry
from orchestrator.specialists.evaluation.datasets import Split
from orchestrator.specialists.evaluation.support_intents import (
    CLINC_OFF_TOPIC_DOMAINS,
    clinc_splits,
    evaluate_intent,
    load_eval_set,
)
from orchestrator.specialists.intent import IntentSpecialist, builtin_fit


def run(clinc: Path, *, fit: bool) -> dict[str, Any]:
    if fit:
        from orchestrator.specialists.training.builtin_intent import (
            fit_builtin_intent,
            write_builtin_fit,
        )

        write_builtin_fit(*fit_builtin_intent())
        builtin_fit.cache_clear()
    specialist = default_registry().create("intent")
    assert isinstance(specialist, IntentSpecialist)
    rows: dict[str, Split] = {"own set, tune": load_eval_set("tune")}
    rows["own set, test"] = load_eval_set("test")
    notes: list[str] = []
    if (clinc / "data_full.json").is_file():
        named = {
            "oos_test": "CLINC150 oos_test",
            "mapped": "CLINC150 test, mapped intents",
            "off_topic_domains": "CLINC150 test, " + " + ".join(CLINC_OFF_TOPIC_DOMAINS),
        }
        rows |= {named[k]: split for k, split in clinc_splits(clinc).items()}
    else:
        notes.append(f"{clinc}/data_full.json not found: CLINC150 rows skipped")
    fitted = builtin_fit()
    return {
        "fit": fitted.model_dump(),
        "rows": {name: evaluate_intent(specialist, split) for name, split in rows.items()},
        "notes": notes,
        "machine": machine(),
    }


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}"  # NaN: nothing to score


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_DIR / "clinc150")
    parser.add_argument("--fit", action="store_true", help="refit on the tune part first")
    parser.add_argument("--misses", action="store_true", help="list the tune part's misses")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    result = run(args.data, fit=args.fit)
    if args.json:
        print(json.dumps(result, indent=2))
        raise SystemExit(0)
    fitted = result["fit"]
    print_table(
        f"built-in intent, out of scope (temperature {fitted['temperature']}, "
        f"threshold {fitted['out_of_scope_threshold']}, fitted on {fitted['fitted_on']})",
        ["data", "in-scope", "in-scope acc %", "off-topic", "off-topic recall %", "ECE"],
        [
            [
                name,
                str(row["in_scope"]),
                _pct(row["in_scope_accuracy"]),
                str(row["out_of_scope"]),
                _pct(row["out_of_scope_recall"]),
                f"{row['expected_calibration_error']:.3f}",
            ]
            for name, row in result["rows"].items()
        ],
    )
    for note in result["notes"]:
        print(note)
    if args.misses:  # the tune part only: the test part is read as figures, never miss by miss
        for miss in result["rows"]["own set, tune"]["misses"]:
            print(f"{miss['label']} -> {miss['answer']} ({miss['confidence']}): {miss['text']}")
