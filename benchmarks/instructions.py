"""Instructions per run of the framework, counted by callgrind: a measure that does not move
with the load of a shared machine, for comparing two versions of the code.

The workload is ``overhead.py``'s no-op ``support_triage`` (constant predictions, so only the
framework runs) with a checkpointer, ``--small`` and ``--large`` runs in one process each;
instructions per run are the difference divided by the difference in runs, so the start-up
(imports, opening the checkpointer) drops out and is reported on its own. Logging is filtered
at WARNING so that versions that log differently compare alike.

    python benchmarks/instructions.py [--checkpointer sqlite] [--small 5] [--large 45]
    python benchmarks/instructions.py --source OTHER_CHECKOUT --pythonpath ITS_INSTALL

``--source`` and ``--pythonpath`` count another version (its benchmarks folder and an install
of it, for example ``pip install --no-deps --target DIR CHECKOUT``) with the same Python and
dependencies. Needs valgrind; under it a run is about 50 times slower (a few minutes in all).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def workload(source: Path, runs: int, kind: str) -> None:
    """What callgrind counts: ``runs`` no-op runs of ``source``'s overhead graph."""
    import asyncio
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.path.insert(0, str(source / "benchmarks"))
    import overhead

    from orchestrator import Orchestrator

    # Only what every version's overhead.py has (noop_registry, inprocess_spec, open_saver),
    # so that older checkouts can be counted too.
    async def main() -> None:
        registry = overhead.noop_registry()
        spec = overhead.inprocess_spec(registry)
        with tempfile.TemporaryDirectory() as state:
            async with (
                overhead.open_saver(kind, Path(state), None) as saver,
                Orchestrator(
                    spec,
                    checkpointer=saver if saver is not None else "none",
                    registry=registry,
                    frontier=False,
                ) as orc,
            ):
                for i in range(runs):
                    await orc.arun(f"message number {i}")

    asyncio.run(main())


def count(source: Path, pythonpath: str | None, runs: int, kind: str) -> int:
    """Instructions callgrind collects for one process doing ``runs`` runs."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={scratch}/callgrind.out",
            sys.executable,
            __file__,
            "--workload",
            str(runs),
            "--source",
            str(source),
            "--checkpointer",
            kind,
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"the counted run failed:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=HERE.parent, help="checkout to count")
    parser.add_argument("--pythonpath", help="where that checkout is installed")
    parser.add_argument("--checkpointer", default="sqlite", choices=["none", "memory", "sqlite"])
    parser.add_argument("--small", type=int, default=5)
    parser.add_argument("--large", type=int, default=45)
    parser.add_argument("--workload", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workload is not None:
        workload(args.source, args.workload, args.checkpointer)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt-get install valgrind)")
    small = count(args.source, args.pythonpath, args.small, args.checkpointer)
    large = count(args.source, args.pythonpath, args.large, args.checkpointer)
    per_run = (large - small) / (args.large - args.small)
    print(
        json.dumps(
            {
                "source": str(args.source),
                "checkpointer": args.checkpointer,
                "instructions_per_run": round(per_run),
                "start_up_instructions": round(small - args.small * per_run),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
