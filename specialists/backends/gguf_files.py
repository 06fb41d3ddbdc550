"""Where a GGUF model comes from: a local file, or a file of a Hugging Face repository
(``hf://OWNER/REPO/FILE.gguf``) downloaded once into the Hugging Face cache and read from
there afterwards, offline too."""

from __future__ import annotations

from pathlib import Path

from orchestrator._errors import ConfigurationError

__all__ = ["HUB_PREFIX", "gguf_file"]

HUB_PREFIX = "hf://"
_EXAMPLE = "hf://bartowski/Qwen2.5-1.5B-Instruct-GGUF/Qwen2.5-1.5B-Instruct-Q4_K_M.gguf"


def gguf_file(model: str | Path) -> Path:
    """The local GGUF file ``model`` names: a path, or ``hf://OWNER/REPO/FILE.gguf``
    (``hf://OWNER/REPO@REVISION/FILE.gguf`` pins a revision), fetched into the Hugging Face
    cache (``HF_HOME``) the first time and found there the next."""
    text = str(model)
    if not text.startswith(HUB_PREFIX):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"GGUF model file not found: {path} (give a local .gguf file or "
                f"{HUB_PREFIX}OWNER/REPO/FILE.gguf)"
            )
        return path
    parts = text[len(HUB_PREFIX) :].split("/")
    if len(parts) < 3 or not all(parts) or not parts[-1].endswith(".gguf"):
        raise ConfigurationError(
            f"model_path {text!r}: write {HUB_PREFIX}OWNER/REPO/FILE.gguf, e.g. {_EXAMPLE}"
        )
    repo, _, revision = "/".join(parts[:2]).partition("@")
    filename = "/".join(parts[2:])
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, revision=revision or None))
    except (OSError, ValueError) as exc:
        # No network and no cached copy, an unknown repository or file (the hub's HTTP
        # errors are OSErrors), a malformed name or revision (ValueError).
        raise ConfigurationError(
            f"{text}: could not fetch {filename} from the Hugging Face repository {repo} "
            f"({type(exc).__name__}); check the names, or download the file where a network "
            "is and give its local path"
        ) from None
