"""An `orchestrator` MCP server of scripted specialists, for the tests (stdio or HTTP)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from orchestrator._tracing import enable_tracing
from orchestrator.specialists.testing import ScriptedSpecialist
from orchestrator.tools.server import ServerLimits, run_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="stdio")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-env")
    parser.add_argument("--pid-file")
    parser.add_argument("--max-input-chars", type=int, default=1000)
    parser.add_argument("--otel", action="store_true")  # as `orchestrator serve --otel`
    args = parser.parse_args()
    if args.otel:
        enable_tracing(service_name="scripted-server")
    if args.pid_file:
        Path(args.pid_file).write_text(str(os.getpid()))
    specialists = {
        "scripted": ScriptedSpecialist(
            {
                "answers": {"refund": {"label": "refund", "confidence": 0.95}},
                "default": {"label": "other", "confidence": 0.9},
                "labels": ["refund", "other"],
            }
        ),
        "slow": ScriptedSpecialist({"delay_s": 1.0}),
    }
    token = os.environ[args.token_env] if args.token_env else None
    asyncio.run(
        run_server(
            specialists,
            transport=args.transport,
            port=args.port,
            token=token,
            limits=ServerLimits(max_input_chars=args.max_input_chars, max_batch=8),
            announce=lambda line: print(line, file=sys.stderr, flush=True),
        )
    )


if __name__ == "__main__":
    main()
