"""``orchestrator specialists serve-command``: the command that hosts specialists, and the
graph bindings that reach them (the CPU MCP server by default, vLLM with ``--gpu``)."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

import typer
import yaml

from orchestrator._errors import ConfigurationError
from orchestrator.cli._output import out
from orchestrator.specialists._registry import default_registry
from orchestrator.specialists.backends.gpu_hosting import Mode, plan_gpu_servers

__all__ = ["serve_command"]


def _lora_pairs(values: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise ConfigurationError(f"--lora {value!r}: write it as NAME=PATH_OR_HUB_ID")
        pairs[name] = path
    return pairs


def _line(text: str) -> None:
    # Commands and graph-file entries are meant to be copied: never wrapped.
    out.print(text, markup=False, soft_wrap=True)


def _cpu_plan(names: list[str], host: str, port: int) -> dict[str, Any]:
    argv = ["orchestrator", "serve", *names, "--transport", "http", "--port", str(port)]
    argv += ["--host", host]
    return {
        "servers": [{"argv": argv, "command": shlex.join(argv), "specialists": names}],
        "graph": {
            "servers": {"specialists": {"url": f"http://{host}:{port}/mcp"}},
            "specialists": {name: {"via": "specialists"} for name in names},
        },
    }


def serve_command(
    names: Annotated[list[str], typer.Argument(help="Specialists to host.")],
    gpu: Annotated[bool, typer.Option("--gpu", help="Host them on a GPU with vLLM.")] = False,
    model: Annotated[
        str | None, typer.Option(help="GPU: the model vLLM serves (default: a recommended one).")
    ] = None,
    lora: Annotated[
        list[str] | None,
        typer.Option(help="GPU: NAME=PATH, serve specialist NAME as this LoRA adapter."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="GPU: generate, choice, classify or tools (default: per model)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the server binds.")] = "",
    public_host: Annotated[
        str, typer.Option(help="Address clients use to reach it (goes into the bindings).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="First port; one more per extra server.")] = 0,
    gpu_memory: Annotated[
        float, typer.Option(help="GPU: share of GPU memory, split across the servers.")
    ] = 0.9,
    max_model_len: Annotated[int | None, typer.Option(help="GPU: context length.")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="GPU: environment variable holding the server's API key.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> int:
    """Print the command that hosts specialists, and the graph-file entries that use it."""
    registry = default_registry()
    for name in names:
        registry.get(name)  # an unknown name fails here, with a did-you-mean
    if mode not in (None, "generate", "choice", "classify", "tools"):
        raise ConfigurationError(f"--mode {mode!r}: use generate, choice, classify or tools")
    if not gpu:
        if model or lora or mode:
            raise ConfigurationError("--model, --lora and --mode apply with --gpu")
        plan = _cpu_plan(names, host or "127.0.0.1", port or 8765)
    else:
        chosen_mode: Mode | None = mode  # type: ignore[assignment]
        servers = plan_gpu_servers(
            names,
            model=model,
            lora=_lora_pairs(lora or []),
            mode=chosen_mode,
            port=port or 8000,
            bind_host=host or "0.0.0.0",
            public_host=public_host,
            gpu_memory=gpu_memory,
            max_model_len=max_model_len,
            api_key_env=api_key_env,
        )
        plan = {
            "servers": [
                {
                    "argv": s.argv,
                    "command": s.command,
                    "model": s.model,
                    "port": s.port,
                    "specialists": s.specialists,
                    "reasons": s.reasons,
                }
                for s in servers
            ],
            "graph": {"specialists": {k: v for s in servers for k, v in s.bindings.items()}},
        }
    if as_json:
        out.print_json(json.dumps(plan))
        return 0
    for index, server in enumerate(plan["servers"]):
        what = ", ".join(server["specialists"])
        _line(f"# server {index + 1}: {what}")
        for name, why in server.get("reasons", {}).items():
            _line(f"#   {name}: {why}")
        _line(server["command"])
        _line("")
    _line("# in the graph file:")
    _line(yaml.safe_dump(plan["graph"], sort_keys=False).rstrip())
    return 0
