"""The cost ledger: every specialist and frontier call of a run, priced, with the frontier's
share and what the run would have cost had the frontier model done every subtask itself."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator._contracts import LedgerEntry, ModelCall, RunLedger, SpecialistResult
from orchestrator._errors import ConfigurationError

__all__ = ["ModelPrice", "PriceTable", "build_ledger", "estimated_frontier_tokens"]

DEFAULT_PRICES = Path(__file__).parent / "data" / "prices.yaml"
# Tokens the frontier would read beyond the input itself to answer one subtask (instructions
# and the tool's schema), and write beyond the output. Used only when this run made no
# frontier escalation whose real usage could be averaged instead.
PROMPT_OVERHEAD_TOKENS = 400
ANSWER_OVERHEAD_TOKENS = 30
CHARS_PER_TOKEN = 4.0


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0, description="USD per million input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")
    cache_write: float | None = Field(default=None, ge=0)
    cache_read: float | None = Field(default=None, ge=0)

    def cost(self, call: ModelCall | LedgerEntry) -> float:
        fresh = call.input_tokens  # the API reports cached tokens apart from input_tokens
        return (
            fresh * self.input
            + call.output_tokens * self.output
            + call.cache_write_tokens
            * (self.cache_write if self.cache_write is not None else self.input)
            + call.cache_read_tokens
            * (self.cache_read if self.cache_read is not None else self.input)
        ) / 1_000_000


class LocalPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu_core_hour: float = Field(ge=0, description="USD per CPU core hour.")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str = "USD"
    default_frontier: str
    models: dict[str, ModelPrice]
    local: LocalPrice
    source: str = Field(default="", exclude=True)

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        file = Path(path) if path is not None else DEFAULT_PRICES
        try:
            raw = yaml.safe_load(file.read_text(encoding="utf-8"))
            table = cls.model_validate(raw)
        except OSError as exc:
            raise ConfigurationError(f"price table {file}: {exc.strerror}") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigurationError(f"price table {file} is invalid: {exc}") from None
        return table.model_copy(update={"source": str(file)})

    def price(self, model: str) -> ModelPrice | None:
        name = model.split(":", 1)[-1]  # "anthropic:claude-..." -> "claude-..."
        matches = [k for k in self.models if name == k or name.startswith(k)]
        return self.models[max(matches, key=len)] if matches else None

    def local_cost(self, compute_ms: float) -> float:
        return compute_ms / 3_600_000 * self.local.cpu_core_hour


def _tokens(value: object) -> int:
    return int(len(json.dumps(value, ensure_ascii=False)) / CHARS_PER_TOKEN)


def estimated_frontier_tokens(input: object, output: object) -> tuple[int, int]:
    """Input and output tokens the frontier model would spend answering one subtask itself:
    its input plus the instructions and the tool's schema, its output plus the wrapping."""
    return PROMPT_OVERHEAD_TOKENS + _tokens(input), ANSWER_OVERHEAD_TOKENS + _tokens(output)


def _frontier_entry(call: ModelCall, prices: PriceTable) -> LedgerEntry:
    price = prices.price(call.model)
    return LedgerEntry(
        kind="frontier",
        role=call.role,
        subtask_id=call.subtask_id,
        model=call.model,
        input_tokens=call.input_tokens,
        output_tokens=call.output_tokens,
        cache_read_tokens=call.cache_read_tokens,
        cache_write_tokens=call.cache_write_tokens,
        latency_ms=call.latency_ms,
        cost_usd=price.cost(call) if price else 0.0,
        priced=price is not None,
    )


def build_ledger(
    results: Iterable[SpecialistResult],
    other_calls: Sequence[ModelCall],
    prices: PriceTable,
    frontier_model: str | None,
) -> RunLedger:
    """Price a run. ``results`` are the final results (escalations included, each carrying the
    remote calls made for it); ``other_calls`` are planner and composer calls."""
    results = list(results)
    entries: list[LedgerEntry] = []
    for result in results:
        # Local work happened whoever gave the final answer (a person may have corrected it).
        if result.source != "frontier" and (result.ok or result.compute_ms > 0):
            local_model = result.model if result.source in ("specialist", "vote") else None
            entries.append(
                LedgerEntry(
                    kind="specialist",
                    role="specialist",
                    subtask_id=result.subtask_id,
                    model=local_model or result.specialist,
                    input_tokens=result.tokens,
                    compute_ms=result.compute_ms,
                    latency_ms=result.latency_ms,
                    cost_usd=prices.local_cost(result.compute_ms),
                    priced=True,
                )
            )
        entries.extend(_frontier_entry(c, prices) for c in result.model_calls)
    entries.extend(_frontier_entry(c, prices) for c in other_calls)

    frontier = frontier_model or prices.default_frontier
    price = prices.price(frontier)
    answered = [e for e in entries if e.kind == "frontier" and e.role == "escalation"]
    if answered:
        per_in = sum(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens for e in answered)
        per_out = sum(e.output_tokens for e in answered)
        basis = (
            f"{len(answered)} frontier answers in this run averaged "
            f"{per_in / len(answered):.0f} input and {per_out / len(answered):.0f} output "
            "tokens; every subtask priced at that"
        )
        estimate = [(per_in / len(answered), per_out / len(answered)) for _ in results]
    else:
        basis = (
            f"no frontier answer in this run: each subtask estimated at {PROMPT_OVERHEAD_TOKENS}"
            f" prompt tokens + its input, and its output + {ANSWER_OVERHEAD_TOKENS}, at "
            f"{CHARS_PER_TOKEN:g} characters a token"
        )
        estimate = [estimated_frontier_tokens(r.input, r.output or {}) for r in results]
    all_frontier = (
        sum((i * price.input + o * price.output) / 1_000_000 for i, o in estimate) if price else 0.0
    )
    planner_cost = sum(e.cost_usd for e in entries if e.role == "planner")
    frontier_usd = sum(e.cost_usd for e in entries if e.kind == "frontier")
    specialist_usd = sum(e.cost_usd for e in entries if e.kind == "specialist")
    total = frontier_usd + specialist_usd
    return RunLedger(
        entries=tuple(entries),
        total_usd=total,
        frontier_usd=frontier_usd,
        specialist_usd=specialist_usd,
        frontier_share=frontier_usd / total if total else 0.0,
        frontier_calls=sum(1 for e in entries if e.kind == "frontier"),
        specialist_calls=sum(1 for e in entries if e.kind == "specialist"),
        input_tokens=sum(e.input_tokens for e in entries),
        output_tokens=sum(e.output_tokens for e in entries),
        all_frontier_usd=all_frontier + planner_cost,
        all_frontier_basis=basis if price else f"no price for {frontier} in the price table",
        frontier_model=frontier,
        price_table=prices.source,
    )
