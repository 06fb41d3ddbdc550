"""How to host specialists on GPUs with vLLM: the ``vllm serve`` commands and the graph
bindings that point at them.

Specialists that run on the same base model share one server (its names are aliases, or its
LoRA adapters); classifiers on a sequence-classification model get a pooling server of their
own. Several servers on one GPU split its memory.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator._errors import ConfigurationError

__all__ = ["RECOMMENDED_GPU_MODELS", "GPUModel", "GPUServer", "plan_gpu_servers"]

Mode = Literal["generate", "choice", "classify", "tools"]


@dataclass(frozen=True)
class GPUModel:
    """The model vLLM serves for a specialist, and how the specialist asks it."""

    model: str
    mode: Mode
    why: str
    max_model_len: int = 4096
    #: vLLM's parser of the model's tool-call format, for ``tools`` (hermes suits Qwen).
    tool_call_parser: str = "hermes"


#: Starting points for the built-in specialists; ``--model`` and ``--lora`` replace them.
RECOMMENDED_GPU_MODELS: dict[str, GPUModel] = {
    "intent": GPUModel(
        "Qwen/Qwen3-1.7B",
        "choice",
        "picks one label of the graph's label set; fine-tune a LoRA adapter on your intents "
        "and pass it with --lora",
    ),
    "sentiment": GPUModel(
        "cardiffnlp/twitter-roberta-base-sentiment-latest",
        "classify",
        "RoBERTa-base fine-tuned for tweet sentiment; classes negative, neutral, positive",
        max_model_len=512,
    ),
    "function_call": GPUModel(
        "Qwen/Qwen3-1.7B",
        "tools",
        "native tool calling (vLLM's hermes parser): the model reads the whole conversation "
        "and decides itself whether a function applies; docs/gpus.md lists larger models",
    ),
    "clauses": GPUModel(
        "Qwen/Qwen3-4B-Instruct-2507",
        "generate",
        "long-context instruct model for whole contracts",
        max_model_len=32768,
    ),
}


@dataclass
class GPUServer:
    """One ``vllm serve`` process and the specialists it answers for."""

    model: str
    port: int
    specialists: list[str]
    argv: list[str] = field(default_factory=list)
    bindings: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: specialist -> why this model and mode suit it
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        """The command as a shell line, one flag per line."""
        lines: list[list[str]] = []
        for arg in self.argv:
            if arg.startswith("--") or not lines:
                lines.append([])
            # ${VAR} stays unquoted so the shell expands it.
            lines[-1].append(arg if arg.startswith("${") else shlex.quote(arg))
        return " \\\n  ".join(" ".join(line) for line in lines)


def plan_gpu_servers(
    names: Sequence[str],
    *,
    model: str | None = None,
    lora: Mapping[str, str] | None = None,
    mode: Mode | None = None,
    port: int = 8000,
    bind_host: str = "0.0.0.0",
    public_host: str = "127.0.0.1",
    gpu_memory: float = 0.9,
    max_model_len: int | None = None,
    api_key_env: str | None = None,
) -> list[GPUServer]:
    """The servers that host ``names`` on one GPU, with the binding each specialist needs."""
    if not names:
        raise ConfigurationError("name at least one specialist to serve")
    lora = dict(lora or {})
    stray = sorted(set(lora) - set(names))
    if stray:
        raise ConfigurationError(f"--lora names specialists not being served: {', '.join(stray)}")
    if not 0 < gpu_memory <= 1:
        raise ConfigurationError("--gpu-memory must be a fraction of the GPU, in (0, 1]")
    groups: dict[tuple[str, bool], list[tuple[str, GPUModel]]] = {}
    for name in names:
        hint = RECOMMENDED_GPU_MODELS.get(name)
        if hint is None and model is None:
            raise ConfigurationError(
                f"no recommended GPU model for {name!r}; pass --model with the model vLLM "
                "should serve for it"
            )
        chosen = GPUModel(
            model or (hint.model if hint else ""),
            mode or (hint.mode if hint else "generate"),
            hint.why if hint and not model else "chosen with --model",
            max_model_len or (hint.max_model_len if hint else 4096),
        )
        if chosen.mode == "tools" and model:
            chosen = GPUModel(
                chosen.model,
                "tools",
                "chosen with --model; check that vLLM's --tool-call-parser suits it",
                chosen.max_model_len,
            )
        groups.setdefault((chosen.model, chosen.mode == "classify"), []).append((name, chosen))
    share = round(gpu_memory / len(groups), 2)
    servers: list[GPUServer] = []
    for index, ((base, pooling), members) in enumerate(groups.items()):
        server_port = port + index
        adapters = {name: lora[name] for name, _ in members if name in lora}
        plain = [name for name, _ in members if name not in adapters]
        served_names = plain or [base.rsplit("/", 1)[-1]]
        argv = ["vllm", "serve", base, "--served-model-name", *served_names]
        argv += ["--host", bind_host, "--port", str(server_port)]
        argv += ["--gpu-memory-utilization", f"{share:g}"]
        argv += ["--max-model-len", str(max(m.max_model_len for _, m in members))]
        if pooling:
            argv += ["--runner", "pooling", "--convert", "classify"]
        else:
            argv += ["--structured-outputs-config.backend", "xgrammar"]
        parsers = sorted({m.tool_call_parser for _, m in members if m.mode == "tools"})
        if parsers:
            argv += ["--enable-auto-tool-choice", "--tool-call-parser", parsers[0]]
        if adapters:
            argv += ["--enable-lora", "--max-lora-rank", "64", "--max-loras", str(len(adapters))]
            argv += ["--lora-modules", *(f"{n}={p}" for n, p in adapters.items())]
        if api_key_env:
            argv += ["--api-key", f"${{{api_key_env}}}"]
        server = GPUServer(base, server_port, [n for n, _ in members], argv)
        for name, chosen in members:
            endpoint: dict[str, Any] = {
                "base_url": f"http://{public_host}:{server_port}/v1",
                "model": name,
                "mode": chosen.mode,
            }
            if api_key_env:
                endpoint["api_key_env"] = api_key_env
            server.bindings[name] = {"backend": "vllm", "endpoint": endpoint}
            server.reasons[name] = chosen.why
        servers.append(server)
    return servers
