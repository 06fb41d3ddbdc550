"""Out-of-scope in the built-in intent specialist and the shipped graph, with the real
bundled encoder."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from orchestrator import Orchestrator
from orchestrator.graphs import shipped_graph
from orchestrator.specialists import TextInput, default_registry
from orchestrator.specialists import intent as intent_module
from orchestrator.specialists._fewshot import FewShotHead, load_label_specs
from orchestrator.specialists.backends.encoder import bundled_encoder
from orchestrator.specialists.evaluation.support_intents import (
    evaluate_intent,
    load_eval_set,
    part_of,
    score_out_of_scope,
)
from orchestrator.specialists.intent import (
    BUILTIN_HEAD,
    BUILTIN_INTENTS,
    IntentOutput,
    IntentSpecialist,
    builtin_fit,
    labels_digest,
)
from orchestrator.specialists.training.builtin_intent import fit_builtin_intent

# The test part's scores as measured when the values were fitted on the tune part; a change
# that moves either by more than two points must say so here.
PINNED_TEST = {"in_scope_accuracy": 0.9496, "out_of_scope_recall": 0.9432}
OFF_TOPIC = [
    "What's the capital of France?",
    "Tell me a joke about cats.",
    "Who won the basketball game yesterday?",
]


@pytest.fixture(scope="module")
def intent() -> IntentSpecialist:
    specialist = default_registry().create("intent")
    assert isinstance(specialist, IntentSpecialist)
    specialist.ensure_loaded()
    return specialist


def _answer(specialist: IntentSpecialist, text: str) -> tuple[IntentOutput, float]:
    (prediction,) = specialist.predict_batch([TextInput(text=text)])
    assert isinstance(prediction.output, IntentOutput)
    return prediction.output, prediction.confidence


# -- the evaluation set ----------------------------------------------------------------------


def test_evaluation_set_is_large_enough_and_split_by_a_fixed_hash() -> None:
    everything = load_eval_set()
    counts = {label: everything.labels.count(label) for label in set(everything.labels)}
    assert set(counts) == set(load_label_specs(BUILTIN_INTENTS))
    assert counts.pop("out_of_scope") >= 150
    assert min(counts.values()) >= 30
    tune, test = load_eval_set("tune"), load_eval_set("test")
    assert (len(tune), len(test)) == (240, 227)
    assert sorted(tune.texts + test.texts) == sorted(everything.texts)
    assert all(part_of(t) == "test" for t in test.texts)
    assert [part_of("Tell me a joke."), part_of("Where is my order?")] == ["tune", "test"]


def test_no_evaluation_message_is_a_few_shot_example() -> None:
    examples = {
        text.casefold()
        for spec in load_label_specs(BUILTIN_INTENTS).values()
        for text in (spec.description, *spec.examples)
    }
    assert not [t for t in load_eval_set().texts if t.casefold() in examples]


def test_scores_count_an_in_scope_message_answered_out_of_scope_as_wrong() -> None:
    gold = ["refund", "billing", "out_of_scope", "out_of_scope"]
    scores = score_out_of_scope(gold, ["refund", "out_of_scope", "out_of_scope", "billing"])
    assert scores.in_scope_accuracy == 0.5
    assert scores.out_of_scope_recall == 0.5
    assert scores.out_of_scope_precision == 0.5
    assert (scores.in_scope, scores.out_of_scope) == (2, 2)


# -- what ships, and the scores it gets ------------------------------------------------------


def test_shipped_head_and_values_are_those_fitted_on_the_tune_part() -> None:
    shipped = builtin_fit()
    assert shipped.labels_sha256 == labels_digest()  # refit after editing the label file
    head, refit = fit_builtin_intent(bundled_encoder())
    assert refit.out_of_scope_threshold == shipped.out_of_scope_threshold
    assert refit.temperature == pytest.approx(shipped.temperature, rel=0.02)
    assert refit.fitted_on == shipped.fitted_on and "tune" in shipped.fitted_on
    stored = FewShotHead.load(BUILTIN_HEAD, bundled_encoder())
    assert stored.labels == head.labels
    features = bundled_encoder().encode(OFF_TOPIC)
    assert np.allclose(stored.logits_of(features), head.logits_of(features), atol=1e-3)


def test_scores_on_the_test_part_are_pinned(intent: IntentSpecialist) -> None:
    report = evaluate_intent(intent, load_eval_set("test"))
    for name, value in PINNED_TEST.items():
        assert report[name] == pytest.approx(value, abs=0.02), name
        assert report[name] >= 0.90, name
    assert report["expected_calibration_error"] < 0.08


def test_off_topic_messages_are_out_of_scope_with_a_confidence(intent: IntentSpecialist) -> None:
    for text in OFF_TOPIC:
        output, confidence = _answer(intent, text)
        assert output.label == "out_of_scope" and not output.accepted, text
        scores = {r.label: r.score for r in output.ranked}
        assert confidence == scores["out_of_scope"] >= builtin_fit().out_of_scope_threshold
    output, confidence = _answer(intent, "I was charged twice for the same order.")
    assert (output.label, output.accepted) == ("billing", True)
    assert confidence == output.ranked[0].score


def test_the_out_of_scope_label_takes_the_name_the_options_give_it() -> None:
    specialist = default_registry().create("intent", {"out_of_scope_label": "not_support"})
    assert isinstance(specialist, IntentSpecialist)
    assert "not_support" in (specialist.labels or ()) and "out_of_scope" not in (
        specialist.labels or ()
    )
    output, _ = _answer(specialist, OFF_TOPIC[0])
    assert output.label == "not_support"


def test_a_threshold_in_the_options_replaces_the_fitted_one() -> None:
    never = default_registry().create("intent", {"out_of_scope_threshold": 1.0})
    assert isinstance(never, IntentSpecialist)
    output, _ = _answer(never, OFF_TOPIC[0])
    assert output.label != "out_of_scope" and output.accepted


def test_labels_of_ones_own_with_the_out_of_scope_label() -> None:
    labels = {
        "greeting": {"description": "The writer says hello.", "examples": ["Hello!", "Hi!"]},
        "goodbye": {"description": "The writer says goodbye.", "examples": ["Bye!", "Ciao!"]},
        "out_of_scope": {
            "description": "Anything but a greeting or a goodbye.",
            "examples": ["What is the time?", "My order is late.", "Tell me a joke."],
        },
    }
    specialist = default_registry().create("intent", {"labels": labels})
    assert isinstance(specialist, IntentSpecialist)
    output, confidence = _answer(specialist, "Where is the train station?")
    assert output.label == "out_of_scope" and confidence >= 0.5
    assert _answer(specialist, "Hello there, good morning!")[0].label == "greeting"


def test_a_changed_label_file_is_fitted_as_it_loads(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(intent_module, "labels_digest", lambda: "another file")
    specialist = default_registry().create("intent")
    assert isinstance(specialist, IntentSpecialist)
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        specialist.ensure_loaded()
    assert any("--fit" in record.getMessage() for record in caplog.records)
    # Fitted now, at temperature 1: the off-topic answer still comes, from the plain head.
    output, _ = _answer(specialist, OFF_TOPIC[0])
    assert output.label == "out_of_scope"


# -- the shipped graph -----------------------------------------------------------------------


@pytest.mark.slow
def test_support_triage_routes_off_topic_messages_to_their_own_queue() -> None:
    graph = shipped_graph("support_triage")
    assert graph is not None
    orc = Orchestrator.from_file(graph, checkpointer="none", inprocess=True)
    for text in OFF_TOPIC:
        result = orc.run(text)
        assert result.value("intent.label") == "out_of_scope", text
        assert result.value("queue") == "out_of_scope"
        assert result.fields["queue"].provenance.verified
        assert "no support request" in str(result.value("reason"))
    ticket = orc.run("My parcel never arrived, where is my order?")
    assert (ticket.value("queue"), ticket.value("intent.label")) == ("order_status",) * 2
