"""Specialists with the real bundled encoder, the registry, and a custom specialist."""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator._errors import ConfigurationError, SpecialistError, UnknownSpecialistError
from orchestrator.specialists import (
    NoOptions,
    Prediction,
    Specialist,
    SpecialistRegistry,
    TextInput,
    default_registry,
)
from orchestrator.specialists._text_classifier import ClassifierOptions, TextClassifier
from orchestrator.specialists.backends.encoder import (
    BUNDLED_MODEL_ID,
    OnnxSentenceEncoder,
    Vectors,
    bundled_encoder,
)
from orchestrator.specialists.intent import IntentOptions, IntentOutput, IntentSpecialist
from orchestrator.specialists.sentiment import SentimentOutput, SentimentSpecialist
from orchestrator.tools._toolset import InProcessToolset

INTENTS = (
    "billing",
    "refund",
    "cancel_subscription",
    "order_status",
    "technical_issue",
    "account_access",
    "product_question",
    "out_of_scope",
)


@pytest.fixture(scope="module")
def encoder() -> OnnxSentenceEncoder:
    return bundled_encoder()


@pytest.fixture(scope="module")
def intent() -> TextClassifier:
    specialist = default_registry().create("intent")
    assert isinstance(specialist, IntentSpecialist)
    specialist.ensure_loaded()
    return specialist


@pytest.fixture(scope="module")
def sentiment() -> TextClassifier:
    specialist = default_registry().create("sentiment")
    assert isinstance(specialist, SentimentSpecialist)
    specialist.ensure_loaded()
    return specialist


def _predict(specialist: Specialist[Any, Any], text: str) -> Prediction[Any]:
    return specialist.predict_batch([TextInput(text=text)])[0]


# -- the bundled encoder ---------------------------------------------------------------------


def test_bundled_encoder_is_shared_and_returns_unit_float32_rows_of_dim_384(
    encoder: OnnxSentenceEncoder,
) -> None:
    assert bundled_encoder() is encoder
    assert (encoder.dim, encoder.model_id) == (384, BUNDLED_MODEL_ID)
    vectors = encoder.encode(["The first sentence.", "A second, different one."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_identical_texts_give_identical_vectors(encoder: OnnxSentenceEncoder) -> None:
    vectors = encoder.encode(["same words here", "other words", "same words here"])
    assert np.array_equal(vectors[0], vectors[2])
    assert not np.array_equal(vectors[0], vectors[1])


def test_cached_texts_come_back_unchanged_in_a_batch_with_duplicates(
    encoder: OnnxSentenceEncoder,
) -> None:
    first = encoder.encode(["cached sentence about trains"])
    first[0] = 0.0  # the caller's array is a copy: writing to it must not touch the cache
    again = encoder.encode(["new sentence", "cached sentence about trains", "new sentence"])
    assert again.shape == (3, 384)
    assert np.array_equal(again[1], encoder.encode(["cached sentence about trains"])[0])
    assert np.linalg.norm(again[1]) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(again[0], again[2])
    assert encoder.encode([]).shape == (0, 384)


def test_concurrent_encodes_of_new_texts_agree_and_compute_each_text_once(
    encoder: OnnxSentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [f"concurrency probe number {i} at {time.time_ns()}" for i in range(5)]
    computed: list[str] = []
    lock = threading.Lock()
    forward = encoder._forward

    def slow_counting_forward(batch: Sequence[str]) -> Vectors:
        with lock:
            computed.extend(batch)
        time.sleep(0.05)  # keep the texts in flight while the other threads arrive
        return forward(batch)

    monkeypatch.setattr(encoder, "_forward", slow_counting_forward)
    barrier = threading.Barrier(8)

    def encode() -> Vectors:
        barrier.wait()
        return encoder.encode(texts)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: encode(), range(8)))
    assert all(np.array_equal(r, results[0]) for r in results)
    assert sorted(computed) == sorted(texts)  # every text went through the model once
    np.testing.assert_allclose(np.linalg.norm(results[0], axis=1), 1.0, atol=1e-5)


def test_a_batch_of_mixed_lengths_encodes_as_each_text_alone(
    encoder: OnnxSentenceEncoder,
) -> None:
    # Texts are padded per length group, never to the longest text of the batch.
    texts = [f"probe {i} " + "word " * (i * 7 % 40) for i in range(24)]
    fresh = OnnxSentenceEncoder.bundled(cache_size=0)
    alone = np.stack([fresh.encode([t])[0] for t in texts])
    together = fresh.encode(texts)
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_length_groups_partition_the_texts_at_the_least_cost() -> None:
    import itertools

    from orchestrator.specialists.backends.encoder import length_groups

    def cost(groups: list[list[int]], lengths: list[int], pass_cost: int) -> int:
        return sum(pass_cost + len(g) * max(lengths[i] for i in g) for g in groups)

    lengths = [12, 60, 13, 11, 58, 30, 14, 62]
    groups = length_groups(lengths, pass_cost=10)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    # Against every split of the length-sorted texts into contiguous runs.
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    best = min(
        cost([order[a:b] for a, b in itertools.pairwise((0, *cuts, len(order)))], lengths, 10)
        for k in range(len(order))
        for cuts in itertools.combinations(range(1, len(order)), k)
    )
    assert cost(groups, lengths, 10) == best
    assert length_groups([20] * 16) == [list(range(16))]  # equal lengths: one pass
    assert len(length_groups([5, 500])) == 2  # padding 5 to 500 costs more than a pass
    assert length_groups([]) == []
    many = length_groups([(i * 37) % 120 + 1 for i in range(5000)])  # one big encode() call
    assert sorted(i for g in many for i in g) == list(range(5000))
    assert max(len(g) for g in many) <= 64


def test_count_tokens_is_positive_and_grows_with_the_text(encoder: OnnxSentenceEncoder) -> None:
    (short,) = encoder.count_tokens(["hi"])
    (long,) = encoder.count_tokens(["a much longer sentence with many more words in it"])
    assert 0 < short < long


def test_count_tokens_of_a_batch_does_not_count_padding(encoder: OnnxSentenceEncoder) -> None:
    short, long = "hi", "a much longer sentence with many more words in it"
    alone = [encoder.count_tokens([short])[0], encoder.count_tokens([long])[0]]
    assert encoder.count_tokens([short, long]) == alone


def test_similar_sentences_are_closer_than_unrelated_ones(encoder: OnnxSentenceEncoder) -> None:
    anchor, similar, unrelated = encoder.encode(
        [
            "How do I reset my password?",
            "I forgot my password and cannot log in.",
            "The weather at the beach was sunny and warm.",
        ]
    )
    assert float(anchor @ similar) > float(anchor @ unrelated)


# -- intent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I forgot my password and need to reset it so I can log in.", "account_access"),
        ("My parcel never arrived, where is my order?", "order_status"),
        ("The app crashes every time I open it.", "technical_issue"),
        ("Please cancel my membership, I no longer want to be subscribed.", "cancel_subscription"),
    ],
)
def test_intent_labels_clear_customer_messages(
    intent: TextClassifier, text: str, label: str
) -> None:
    assert _predict(intent, text).output.label == label


def test_intent_returns_ranked_scores_best_first(intent: TextClassifier) -> None:
    prediction = _predict(intent, "I was charged twice for the same order.")
    ranked = prediction.output.ranked
    scores = [r.score for r in ranked]
    assert len(ranked) == 3  # the default top_k
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) <= 1.0 + 1e-6
    assert {r.label for r in ranked} <= set(INTENTS)
    assert prediction.output.label == ranked[0].label
    assert prediction.confidence == ranked[0].score
    assert prediction.tokens > 0


def test_intent_honours_custom_labels_and_top_k() -> None:
    labels = {
        "greeting": {
            "description": "The writer says hello.",
            "examples": ["Hello!", "Hi there, good morning.", "Hey, nice to meet you."],
        },
        "goodbye": {
            "description": "The writer says goodbye.",
            "examples": ["Bye!", "See you later.", "Goodbye and take care."],
        },
    }
    specialist = default_registry().create("intent", {"labels": labels, "top_k": 1})
    assert specialist.labels == ("greeting", "goodbye")
    hello = _predict(specialist, "Hello, good morning to you!")
    bye = _predict(specialist, "Goodbye, see you tomorrow!")
    assert (hello.output.label, bye.output.label) == ("greeting", "goodbye")
    assert [r.label for r in hello.output.ranked] == ["greeting"]  # top_k: 1
    both = default_registry().create("intent", {"labels": labels, "top_k": 5})
    ranked = _predict(both, "Hello there!").output.ranked
    assert [r.label for r in ranked] == ["greeting", "goodbye"]  # top_k caps at the label count
    assert sum(r.score for r in ranked) == pytest.approx(1.0, abs=1e-5)


# -- sentiment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("I absolutely love this, thank you so much!", "positive"),
        ("This is terrible, I am furious and disappointed.", "negative"),
        ("The store opens at nine on Monday.", "neutral"),
    ],
)
def test_sentiment_labels_clear_sentences(sentiment: TextClassifier, text: str, label: str) -> None:
    assert _predict(sentiment, text).output.label == label


# -- published contracts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels"),
    [("intent", INTENTS), ("sentiment", ("negative", "neutral", "positive"))],
)
def test_tool_info_publishes_schemas_labels_and_summary_fields(
    name: str, labels: tuple[str, ...], intent: TextClassifier, sentiment: TextClassifier
) -> None:
    specialist = {"intent": intent, "sentiment": sentiment}[name]
    info = specialist.tool_info()
    assert info.name == name and info.description
    assert "text" in info.input_schema["properties"]
    assert info.input_schema["required"] == ["text"]
    assert {"label", "ranked"} <= set(info.output_schema["properties"])
    assert info.labels == labels
    assert info.summary_fields == ("label",)
    output = _predict(specialist, "Thanks, that fixed it.").output.model_dump(mode="json")
    assert list(Draft202012Validator(info.output_schema).iter_errors(output)) == []


def test_loaded_classifier_names_the_encoder_in_its_model_id(intent: TextClassifier) -> None:
    assert intent.model_id == f"intent:fewshot-head/{BUNDLED_MODEL_ID}"


# -- the registry ----------------------------------------------------------------------------


def test_unknown_specialist_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownSpecialistError) as caught:
        SpecialistRegistry().get("intnet")
    error = caught.value
    assert isinstance(error, ConfigurationError) and isinstance(error, KeyError)
    assert "did you mean 'intent'?" in str(error)
    assert {"intent", "sentiment"} <= set(error.known)


def test_entry_points_provide_the_built_ins() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="orchestrator.specialists")}
    assert {"intent", "sentiment"} <= names
    registry = SpecialistRegistry()
    assert {"intent", "sentiment"} <= set(registry.names())
    assert registry.get("intent") is IntentSpecialist
    assert registry.get("sentiment") is SentimentSpecialist


def test_a_registry_without_entry_points_knows_only_what_is_registered() -> None:
    registry = SpecialistRegistry(load_entry_points=False)
    assert registry.names() == []
    with pytest.raises(UnknownSpecialistError, match="Known specialists: none"):
        registry.get("intent")


@pytest.mark.parametrize("thing", [int, "intent", IntentSpecialist(), BaseModel])
def test_registering_a_non_specialist_is_a_configuration_error(thing: Any) -> None:
    with pytest.raises(ConfigurationError, match="is not a Specialist subclass"):
        SpecialistRegistry(load_entry_points=False).register(thing)


def test_create_validates_options() -> None:
    registry = SpecialistRegistry()
    created = registry.create("intent", {"top_k": 2})
    assert created.options.model_dump()["top_k"] == 2
    with pytest.raises(ValidationError):
        registry.create("intent", {"top_k": 0})
    with pytest.raises(ValidationError):
        registry.create("sentiment", {"no_such_option": True})


# -- a custom specialist ---------------------------------------------------------------------


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    times: int = Field(default=1, ge=1)


class EchoOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    echoed: str
    words: int


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confidence: float = 0.75


class EchoSpecialist(Specialist[EchoInput, EchoOutput]):
    name: ClassVar[str] = "echo"
    description: ClassVar[str] = "Repeats its input. Input: {text, times}."
    input_model: ClassVar[type[BaseModel]] = EchoInput
    output_model: ClassVar[type[BaseModel]] = EchoOutput
    options_model: ClassVar[type[BaseModel]] = EchoOptions
    summary_fields: ClassVar[tuple[str, ...] | None] = ("echoed",)

    def __init__(self, options: BaseModel | dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.loads = 0

    @property
    def model_id(self) -> str:
        return "echo-v2"

    def load(self) -> None:
        self.loads += 1

    def predict_batch(self, inputs: Sequence[EchoInput]) -> list[Prediction[EchoOutput]]:
        assert isinstance(self.options, EchoOptions)
        return [
            Prediction(
                EchoOutput(echoed=" ".join([i.text] * i.times), words=len(i.text.split())),
                self.options.confidence,
                len(i.text.split()),
            )
            for i in inputs
        ]


class OtherEcho(EchoSpecialist):
    pass


class TypedEcho(Specialist[EchoInput, EchoOutput, EchoOptions]):
    """The models named once, as type parameters."""

    name: ClassVar[str] = "typed_echo"
    description: ClassVar[str] = "Repeats its input. Input: {text, times}."

    def predict_batch(self, inputs: Sequence[EchoInput]) -> list[Prediction[EchoOutput]]:
        words = [len(i.text.split()) for i in inputs]
        return [
            Prediction(EchoOutput(echoed=i.text * i.times, words=n), self.options.confidence, n)
            for i, n in zip(inputs, words, strict=True)
        ]


def test_type_parameters_name_the_input_output_and_options_models() -> None:
    assert TypedEcho.input_model is EchoInput
    assert TypedEcho.output_model is EchoOutput
    assert TypedEcho.options_model is EchoOptions
    assert TypedEcho({"confidence": 0.5}).options == EchoOptions(confidence=0.5)
    assert TypedEcho().options == EchoOptions()
    with pytest.raises(ValidationError):
        TypedEcho({"confidance": 0.5})
    out = asyncio.run(InProcessToolset({"echo": TypedEcho()}).call_tool("echo", {"text": "ab"}))
    assert (out.output, out.confidence) == ({"echoed": "ab", "words": 1}, 0.75)


def test_a_specialist_that_names_no_options_takes_none() -> None:
    class Plain(Specialist[EchoInput, EchoOutput]):
        name: ClassVar[str] = "plain"
        description: ClassVar[str] = "Takes no options."

        def predict_batch(self, inputs: Sequence[EchoInput]) -> list[Prediction[EchoOutput]]:
            return []

    assert Plain.options_model is NoOptions
    with pytest.raises(ValidationError):
        Plain({"confidence": 0.5})


def test_generic_classes_in_between_pass_the_parameters_on() -> None:
    assert IntentSpecialist.input_model is TextInput
    assert IntentSpecialist.output_model is IntentOutput
    assert IntentSpecialist.options_model is IntentOptions
    assert SentimentSpecialist.output_model is SentimentOutput
    assert SentimentSpecialist.options_model is ClassifierOptions  # the parameter's default
    assert type(IntentSpecialist({"out_of_scope_label": "none"}).options) is IntentOptions


def test_models_a_class_sets_itself_win_over_its_parameters() -> None:
    # EchoSpecialist names no options parameter but sets `options_model`.
    assert EchoSpecialist.options_model is EchoOptions
    assert OtherEcho.options_model is EchoOptions  # inherited as set
    assert EchoSpecialist({"confidence": 0.1}).options == EchoOptions(confidence=0.1)


class UrgencyOutput(BaseModel):
    label: str


def test_a_specialist_written_without_type_parameters_still_works() -> None:
    # The README's shape: plain class attributes, no type parameters.
    class Urgency(Specialist):  # type: ignore[type-arg]
        name = "urgency"
        description = "Says whether a message needs an answer today."
        input_model = TextInput
        output_model = UrgencyOutput
        summary_fields = ("label",)

        def predict_batch(self, inputs: Any) -> Any:
            return [Prediction(UrgencyOutput(label="today"), confidence=0.9) for _ in inputs]

    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(Urgency)
    urgency = registry.create("urgency")
    assert urgency.options == NoOptions()
    out = asyncio.run(InProcessToolset({"urgency": urgency}).call_tool("urgency", {"text": "x"}))
    assert (out.output, out.confidence) == ({"label": "today"}, 0.9)


def test_re_registering_a_taken_name_needs_replace() -> None:
    registry = SpecialistRegistry(load_entry_points=False)
    assert registry.register(EchoSpecialist) is EchoSpecialist
    assert registry.register(EchoSpecialist) is EchoSpecialist  # the same class again is fine
    with pytest.raises(ConfigurationError, match="pass replace=True"):
        registry.register(OtherEcho)
    assert registry.get("echo") is EchoSpecialist
    registry.register(OtherEcho, replace=True)
    assert registry.get("echo") is OtherEcho
    registry.register(OtherEcho, name="echo2")
    assert registry.names() == ["echo", "echo2"]


def test_registering_over_an_entry_point_name_needs_replace() -> None:
    registry = SpecialistRegistry()
    assert "intent" in registry.names()
    with pytest.raises(ConfigurationError, match="pass replace=True"):
        registry.register(EchoSpecialist, name="intent")


def test_custom_specialist_runs_through_the_in_process_toolset() -> None:
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(EchoSpecialist)
    echo = registry.create("echo")
    assert isinstance(echo, EchoSpecialist)
    toolset = InProcessToolset({"shout": echo})
    (info,) = asyncio.run(toolset.list_tools())
    assert (info.name, info.summary_fields, info.labels) == ("shout", ("echoed",), None)
    out = asyncio.run(toolset.call_tool("shout", {"text": "hi there", "times": 2}))
    assert out.output == {"echoed": "hi there hi there", "words": 2}
    assert (out.confidence, out.model, out.tokens) == (0.75, "echo-v2", 2)
    assert out.compute_ms >= 0
    asyncio.run(toolset.call_tool("shout", {"text": "again"}))
    assert echo.loads == 1  # loaded once, before the first prediction


def test_in_process_toolset_clamps_confidence_into_0_1() -> None:
    toolset = InProcessToolset({"echo": EchoSpecialist({"confidence": 1.7})})
    assert asyncio.run(toolset.call_tool("echo", {"text": "x"})).confidence == 1.0


@pytest.mark.parametrize(
    "arguments", [{}, {"text": ""}, {"text": "x", "times": 0}, {"text": "x", "extra": 1}]
)
def test_invalid_arguments_raise_specialist_error(arguments: dict[str, Any]) -> None:
    toolset = InProcessToolset({"shout": EchoSpecialist()})
    with pytest.raises(SpecialistError, match="invalid arguments for 'shout'"):
        asyncio.run(toolset.call_tool("shout", arguments))


def test_calling_an_unknown_tool_is_a_configuration_error() -> None:
    toolset = InProcessToolset({"shout": EchoSpecialist()})
    with pytest.raises(ConfigurationError, match="no tool named 'whisper'"):
        asyncio.run(toolset.call_tool("whisper", {"text": "x"}))
