"""The frontier model behind one small interface: ask for a structured answer, get it back
validated, with every API call's usage recorded.

Two providers: Anthropic's Messages API (Claude, through the ``anthropic`` SDK: the answer is
a forced tool call, the tool block and the system prompt are cached) and any OpenAI-compatible
chat API (``openai`` SDK: JSON-schema structured output), such as an open model served by vLLM
on-premises. An answer that fails validation goes back to the model with the precise problem,
a bounded number of times. 429, 529, 5xx and lost connections are retried with tenacity,
honouring ``retry-after``.
"""

from __future__ import annotations

import json
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from opentelemetry.trace import Span, SpanKind
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from orchestrator._contracts import ModelCall, ToolInfo
from orchestrator._errors import ConfigurationError, RunError
from orchestrator._logging import get_logger
from orchestrator._secrets import register_secret, register_secret_env
from orchestrator._tracing import child_span
from orchestrator.graph.spec import FrontierSpec

__all__ = [
    "AnthropicFrontier",
    "FrontierError",
    "FrontierModel",
    "OpenAICompatibleFrontier",
    "frontier_from_spec",
]

log = get_logger(__name__)
Role = Literal["planner", "escalation", "composer"]
Validator = Callable[[dict[str, Any]], str | None]


class FrontierError(RunError):
    """The frontier model could not give a valid answer (after corrections and retries)."""

    def __init__(
        self, message: str, calls: Sequence[ModelCall] = (), *, subtask_id: str | None = None
    ) -> None:
        super().__init__(message, subtask_id=subtask_id)
        self.calls = tuple(calls)


def _keep_secret(spec: FrontierSpec, key: str) -> None:
    """The key, and whatever its variable holds, are masked in every error and log line
    (a provider's 401 may echo the key it was sent)."""
    register_secret_env(spec.key_env())
    register_secret(key)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    hinted = _retry_after(exc) if exc else None
    if hinted is not None:
        return min(hinted, 60.0)
    return float(min(30.0, 0.5 * 2 ** (state.attempt_number - 1) + random.random() * 0.25))


@dataclass
class Question:
    """What the model is asked: fixed for all the turns of one structured answer."""

    system: str
    prompt: str
    answer_name: str
    answer_description: str
    schema: dict[str, Any]
    context_tools: Sequence[ToolInfo]


@dataclass
class Turn:
    """One reply: the answer it carries (if any) and the call's usage."""

    answer: dict[str, Any] | None
    call: ModelCall
    #: provider-specific state to send the next correction against
    handle: Any = None
    problem: str | None = None


class FrontierModel(ABC):
    """A remote model that answers with JSON matching a schema.

    :meth:`structured` runs the correction loop; providers implement one request
    (:meth:`_ask`) and how a correction is phrased (:meth:`_correct`).
    """

    provider: str

    def __init__(self, spec: FrontierSpec) -> None:
        self.spec = spec
        self.model = spec.model

    #: the SDK module whose exception types say what is worth retrying
    _errors: Any

    def _retryable(self, exc: BaseException) -> bool:
        # Both SDKs name their errors alike: APIStatusError and APIConnectionError.
        e = self._errors
        if isinstance(exc, e.APIStatusError):
            return bool(exc.status_code in (408, 409, 429) or exc.status_code >= 500)
        return isinstance(exc, e.APIConnectionError)

    @abstractmethod
    def _messages(self, question: Question) -> list[dict[str, Any]]:
        """The opening conversation."""

    @abstractmethod
    async def _ask(
        self,
        question: Question,
        messages: list[dict[str, Any]],
        role: Role,
        subtask_id: str | None,
    ) -> Turn: ...

    @abstractmethod
    def _correct(
        self, question: Question, messages: list[dict[str, Any]], turn: Turn, problem: str
    ) -> None:
        """Append the model's reply and the correction to `messages`."""

    async def _with_retries(self, call: Callable[[], Any]) -> tuple[Any, int]:
        attempts = 0
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.spec.retries + 1),
            wait=_wait,
            retry=retry_if_exception(self._retryable),
            reraise=True,
        ):
            with attempt:
                attempts += 1
                result = await call()
        return result, attempts

    def _describe(self, span: Span, turn: Turn, *, accepted: bool) -> None:
        """One request on its span, in the GenAI semantic conventions (no prompt or answer
        text: they may hold the request)."""
        call = turn.call
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": self.provider,
                "gen_ai.system": self.provider,  # the name older backends read
                "gen_ai.request.model": self.model,
                "gen_ai.request.max_tokens": self.spec.max_tokens,
                "gen_ai.response.model": call.model,
                "gen_ai.usage.input_tokens": call.input_tokens,
                "gen_ai.usage.output_tokens": call.output_tokens,
                "gen_ai.usage.cache_read.input_tokens": call.cache_read_tokens,
                "gen_ai.usage.cache_creation.input_tokens": call.cache_write_tokens,
                "orchestrator.frontier.role": call.role,
                "orchestrator.attempts": call.attempts,
            }
        )
        if call.subtask_id is not None:
            span.set_attribute("orchestrator.subtask.id", call.subtask_id)
        # A rejected answer goes back to the model with its problem: the next span.
        span.set_attribute("orchestrator.frontier.accepted", accepted)

    async def structured(
        self,
        *,
        role: Role,
        system: str,
        prompt: str,
        answer_name: str,
        answer_description: str,
        schema: dict[str, Any],
        validate: Validator,
        context_tools: Sequence[ToolInfo] = (),
        subtask_id: str | None = None,
    ) -> tuple[dict[str, Any], list[ModelCall]]:
        """Ask until the answer passes ``validate`` (None means valid) or corrections run out.

        Raises FrontierError (carrying the calls made) when no valid answer comes back.
        """
        question = Question(system, prompt, answer_name, answer_description, schema, context_tools)
        messages = self._messages(question)
        calls: list[ModelCall] = []
        problem = "no answer"
        for _ in range(self.spec.max_corrections + 1):
            with child_span(f"chat {self.model}", kind=SpanKind.CLIENT) as span:
                try:
                    turn = await self._ask(question, messages, role, subtask_id)
                except Exception as exc:
                    raise FrontierError(
                        f"{self.provider}:{self.model}: {exc}", calls, subtask_id=subtask_id
                    ) from exc
                found = turn.problem or (
                    validate(turn.answer) if turn.answer is not None else "no answer"
                )
                if span.is_recording():
                    self._describe(span, turn, accepted=found is None)
            calls.append(turn.call)
            if found is None and turn.answer is not None:
                return turn.answer, calls
            problem = found or "no answer"
            log.info("frontier answer rejected", role=role, problem=problem)
            self._correct(question, messages, turn, problem)
        raise FrontierError(
            f"{self.provider}:{self.model} gave no valid answer after {len(calls)} attempts; "
            f"last problem: {problem}",
            calls,
            subtask_id=subtask_id,
        )


class AnthropicFrontier(FrontierModel):
    """Claude through the ``anthropic`` SDK; the answer is a forced call of one tool."""

    provider = "anthropic"

    def __init__(
        self,
        spec: FrontierSpec,
        *,
        api_key: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        super().__init__(spec)
        import anthropic

        self._errors = anthropic
        key = api_key or os.environ.get(spec.key_env())
        if not key:
            raise ConfigurationError(f"the frontier model needs {spec.key_env()} to be set")
        _keep_secret(spec, key)
        # Retries are ours (tenacity), so that attempts are counted and recorded.
        self._client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=spec.base_url,
            max_retries=0,
            timeout=spec.timeout_s,
            http_client=http_client,
        )

    def _messages(self, question: Question) -> list[dict[str, Any]]:
        return [{"role": "user", "content": question.prompt}]

    async def _ask(
        self,
        question: Question,
        messages: list[dict[str, Any]],
        role: Role,
        subtask_id: str | None,
    ) -> Turn:
        tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in question.context_tools
        ]
        # The breakpoint on the last tool caches the whole tool block across calls.
        tools.append(
            {
                "name": question.answer_name,
                "description": question.answer_description,
                "input_schema": question.schema,
                "cache_control": {"type": "ephemeral"},
            }
        )
        start = time.perf_counter()
        # The SDK types its parameters as TypedDicts; ours are plain dicts of the same shape.
        create: Any = self._client.messages.create
        message, attempts = await self._with_retries(
            lambda: create(
                model=self.model,
                max_tokens=self.spec.max_tokens,
                system=[
                    {
                        "type": "text",
                        "text": question.system,
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
                messages=messages,
                tools=tools,
                tool_choice={"type": "tool", "name": question.answer_name},
            )
        )
        usage = message.usage
        call = ModelCall(
            role=role,
            provider=self.provider,
            model=message.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_write_tokens=usage.cache_creation_input_tokens or 0,
            latency_ms=(time.perf_counter() - start) * 1000,
            attempts=attempts,
            subtask_id=subtask_id,
        )
        block = next(
            (b for b in message.content if b.type == "tool_use" and b.name == question.answer_name),
            None,
        )
        if block is None:
            return Turn(
                None,
                call,
                handle=message,
                problem=f"the answer did not call {question.answer_name}",
            )
        answer = dict(block.input) if isinstance(block.input, dict) else None
        return Turn(answer, call, handle=block)

    def _correct(
        self, question: Question, messages: list[dict[str, Any]], turn: Turn, problem: str
    ) -> None:
        block = turn.handle
        if turn.answer is None and getattr(block, "content", None) is not None:
            messages.append(
                {"role": "assistant", "content": [b.model_dump() for b in block.content]}
            )
            messages.append(
                {"role": "user", "content": f"Answer by calling {question.answer_name}."}
            )
            return
        messages.append({"role": "assistant", "content": [block.model_dump()]})
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": block.id,
                        "is_error": True,
                        "content": f"{problem} Call {question.answer_name} again, corrected.",
                    }
                ],
            }
        )


class OpenAICompatibleFrontier(FrontierModel):
    """Any OpenAI-compatible chat API, with JSON-schema structured output."""

    provider = "openai"

    def __init__(
        self,
        spec: FrontierSpec,
        *,
        api_key: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        super().__init__(spec)
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError(
                "an OpenAI-compatible frontier model needs the `openai` package: "
                "pip install 'specialist-orchestrator[openai]'"
            ) from exc
        self._errors = openai
        key = api_key or os.environ.get(spec.key_env()) or "not-needed"  # vLLM may not check
        _keep_secret(spec, key)
        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=spec.base_url,
            max_retries=0,
            timeout=spec.timeout_s,
            http_client=http_client,
        )

    def _messages(self, question: Question) -> list[dict[str, Any]]:
        prompt = question.prompt
        if question.context_tools:
            catalogue = "\n".join(
                f"- {t.name}: {t.description}\n  input schema: {json.dumps(t.input_schema)}"
                for t in question.context_tools
            )
            prompt = f"Available tools:\n{catalogue}\n\n{prompt}"
        return [
            {"role": "system", "content": f"{question.system}\n\n{question.answer_description}"},
            {"role": "user", "content": prompt},
        ]

    async def _ask(
        self,
        question: Question,
        messages: list[dict[str, Any]],
        role: Role,
        subtask_id: str | None,
    ) -> Turn:
        start = time.perf_counter()
        create: Any = self._client.chat.completions.create
        completion, attempts = await self._with_retries(
            lambda: create(
                model=self.model,
                messages=messages,
                max_tokens=self.spec.max_tokens,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": question.answer_name, "schema": question.schema},
                },
            )
        )
        usage = completion.usage
        cached = getattr(getattr(usage, "prompt_tokens_details", None), "cached_tokens", 0)
        call = ModelCall(
            role=role,
            provider=self.provider,
            model=completion.model or self.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            cache_read_tokens=cached or 0,
            latency_ms=(time.perf_counter() - start) * 1000,
            attempts=attempts,
            subtask_id=subtask_id,
        )
        content = completion.choices[0].message.content or ""
        try:
            answer = json.loads(content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            return Turn(None, call, handle=content, problem="the answer is not a JSON object")
        return Turn(answer, call, handle=content)

    def _correct(
        self, question: Question, messages: list[dict[str, Any]], turn: Turn, problem: str
    ) -> None:
        messages.append({"role": "assistant", "content": str(turn.handle)})
        messages.append({"role": "user", "content": f"{problem} Answer again, corrected."})


def frontier_from_spec(
    spec: FrontierSpec, *, http_client: httpx2.AsyncClient | None = None
) -> FrontierModel | None:
    """The configured frontier model, or None when its API key is not set (anthropic)."""
    if spec.provider == "anthropic":
        if not os.environ.get(spec.key_env()):
            return None
        return AnthropicFrontier(spec, http_client=http_client)
    if spec.base_url is None and not os.environ.get(spec.key_env()):
        return None
    return OpenAICompatibleFrontier(spec, http_client=http_client)
