"""GGUF models by local path or by Hugging Face repository and file, fetched once."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import huggingface_hub
import huggingface_hub.constants
import pytest

from orchestrator._errors import ConfigurationError
from orchestrator.specialists.backends.gguf_files import gguf_file


def test_a_local_file_is_used_as_it_is(tmp_path: Path) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF")
    assert gguf_file(model) == model
    assert gguf_file(str(model)) == model
    with pytest.raises(ConfigurationError, match=r"GGUF model file not found: .*missing\.gguf"):
        gguf_file(tmp_path / "missing.gguf")


def test_a_hub_file_is_fetched_into_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = tmp_path / "cache" / "model-Q4_K_M.gguf"
    asked: list[tuple[Any, ...]] = []

    def download(repo: str, filename: str, revision: str | None = None) -> str:
        asked.append((repo, filename, revision))
        return str(cached)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    assert gguf_file("hf://owner/Model-GGUF/model-Q4_K_M.gguf") == cached
    assert gguf_file("hf://owner/Model-GGUF@v2/sub/model-Q4_K_M.gguf") == cached
    assert asked == [
        ("owner/Model-GGUF", "model-Q4_K_M.gguf", None),
        ("owner/Model-GGUF", "sub/model-Q4_K_M.gguf", "v2"),
    ]


@pytest.mark.parametrize("spec", ["hf://owner/model.gguf", "hf://owner/repo/model.bin", "hf://"])
def test_a_malformed_hub_name_says_how_to_write_it(spec: str) -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape("write hf://OWNER/REPO/FILE.gguf, e.g. hf://")
    ):
        gguf_file(spec)


def test_with_no_network_and_no_cached_copy_the_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real library, offline, with an empty cache: nothing is fetched and nothing hangs.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        gguf_file("hf://owner/Model-GGUF/model-Q4_K_M.gguf")
    message = str(caught.value)
    fetched = "could not fetch model-Q4_K_M.gguf from the Hugging Face repository owner/Model-GGUF"
    assert fetched in message
    assert "give its local path" in message and "\n" not in message


def test_the_local_generator_runs_a_hub_model_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("llama_cpp")
    from orchestrator.specialists.backends.llama import LlamaJSONGenerator, bundled_gguf_path

    bundled = bundled_gguf_path()  # stands in for the cached download (no network in tests)
    monkeypatch.setattr(
        huggingface_hub, "hf_hub_download", lambda repo, filename, revision=None: str(bundled)
    )
    name = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q4_1.gguf"
    generator = LlamaJSONGenerator(f"hf://{name}", n_threads=1)
    try:
        assert generator.model_id == name
        schema = {
            "type": "object",
            "properties": {"answer": {"enum": ["yes", "no"]}},
            "required": ["answer"],
        }
        messages = [{"role": "user", "content": "Is Paris in France? Answer yes or no."}]
        out = generator.generate(messages, schema, max_tokens=16)
        assert json.loads(out.text)["answer"] in ("yes", "no")
        assert out.prompt_tokens > 0
    finally:
        generator.close()
