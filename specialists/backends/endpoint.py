"""The configuration of a model server that speaks the OpenAI-compatible API (vLLM,
llama.cpp's server): where it is, which model, and how a specialist asks it.

It is plain pydantic and imports nothing else, so that the graph file format can describe an
endpoint (``ServedEndpointSpec`` is this model under the file's rules) without loading the
client that talks to the server.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EndpointConfig"]


class EndpointConfig(BaseModel):
    """An OpenAI-compatible server that hosts a specialist's model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        description="The API root, up to and including /v1 (e.g. http://gpu-1:8000/v1)."
    )
    model: str = Field(
        min_length=1,
        description="Served model name, or the name of a LoRA adapter (`--lora-modules NAME=...`).",
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable that holds the server's API key, if any."
    )
    mode: Literal["auto", "generate", "choice", "classify", "tools"] = Field(
        default="auto",
        description=(
            "How the model answers. generate: JSON under the specialist's schema; choice: one "
            "label of a classifier's label set; classify: vLLM's /classify endpoint on a "
            "sequence-classification model; tools: native tool calling (`tools`, "
            "`tool_choice: auto`) for function_call, the model deciding whether any function "
            "applies (vLLM needs --enable-auto-tool-choice and a --tool-call-parser). auto: "
            "generate for generative specialists, choice for classifiers."
        ),
    )
    structured_outputs: Literal["vllm", "response_format", "json_object"] = Field(
        default="vllm",
        description=(
            "How the schema or label set is sent: vLLM's `structured_outputs` request field; "
            "OpenAI's `response_format` of type json_schema; or `response_format` of type "
            "json_object with a `schema`, as llama.cpp's servers take it."
        ),
    )
    max_tokens: int = Field(default=512, ge=1, le=32_768, description="Per generation.")
    timeout_s: float = Field(default=30, gt=0, le=600, description="Per HTTP request.")
    retries: int = Field(
        default=2, ge=0, le=10, description="Extra attempts on 429, 5xx and lost connections."
    )

    @model_validator(mode="after")
    def _http(self) -> EndpointConfig:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("`base_url` must start with http:// or https://")
        return self
