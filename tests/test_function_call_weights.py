"""The learned argument weights: what they were fitted on, the probabilities they give, and the
candidates the reader records for fitting them."""

from __future__ import annotations

import math

from orchestrator.specialists.function_call.argument_weights import (
    ARGUMENT_WEIGHTS,
    ArgumentWeights,
    share_of,
)
from orchestrator.specialists.function_call.arguments import (
    assign_arguments,
    chosen_probabilities,
    recorded_candidates,
)

TRIANGLE = {
    "base": {"type": "integer", "description": "The base of the triangle."},
    "height": {"type": "integer", "description": "The height of the triangle."},
}


def test_the_shipped_weights_say_what_they_were_fitted_on() -> None:
    fitted = ARGUMENT_WEIGHTS.fitted_on
    assert fitted["data"] and all("first half" in d or "tune part" in d for d in fitted["data"])
    assert ARGUMENT_WEIGHTS.left_out_required < 0 < ARGUMENT_WEIGHTS.left_out_optional
    # A parameter's own name just before a value is evidence for it.
    assert ARGUMENT_WEIGHTS.features["number:near_name"] > 0
    again = ArgumentWeights.from_json(ARGUMENT_WEIGHTS.to_json())
    assert again == ARGUMENT_WEIGHTS


def test_share_of_is_a_softmax_share() -> None:
    assert math.isclose(share_of(1.0, [1.0, 1.0]), 0.5)
    assert share_of(5.0, [5.0, 0.0, -1.0]) > 0.95
    assert math.isclose(sum(share_of(s, [2.0, 0.5, -3.0]) for s in (2.0, 0.5, -3.0)), 1.0)


def test_every_scored_option_is_recorded_with_its_features() -> None:
    text = "the area of a triangle with a base of 10 and a height of 5"
    with recorded_candidates() as groups:
        read = assign_arguments(text, TRIANGLE, ["base", "height"], ["base", "height"])
    assert read["base"].value == 10 and read["height"].value == 5
    by_param = {g.parameter: g for g in groups}
    assert set(by_param) == {"base", "height"}
    values = [v for v, _ in by_param["base"].options]
    assert values[0] is None and {10, 5} <= set(values)  # leaving it out is an option
    features = dict(by_param["base"].options)[10]
    assert features["number:near_name"] == 0.5  # "base of 10": the name two words before


def test_the_chosen_values_get_probabilities() -> None:
    clear = "a base of 10 and a height of 5"
    vague = "a triangle with 10 and 5"
    with chosen_probabilities() as sure:
        assign_arguments(clear, TRIANGLE, ["base", "height"], ["base", "height"])
    with chosen_probabilities() as unsure:
        assign_arguments(vague, TRIANGLE, ["base", "height"], ["base", "height"])
    assert len(sure) == len(unsure) == 2
    assert all(0.0 <= p <= 1.0 for p in sure + unsure)
    # Labelled values are surer than bare ones whose order alone decides.
    assert min(sure) > min(unsure)
    assert not _recording_leaks()


def _recording_leaks() -> bool:
    with chosen_probabilities() as outer:
        pass
    assign_arguments("a base of 3", TRIANGLE, ["base"], ["base"])
    return bool(outer)


def test_a_month_name_is_no_value_for_a_place() -> None:
    place = {"city": {"type": "string", "description": "City of the hotel."}}
    read = assign_arguments("I want to go to Kyoto in April.", place, ["city"], ["city"])
    assert read["city"].value == "Kyoto"
    month = {"month": {"type": "string", "description": "Month of travel."}}
    read = assign_arguments("I want to go to Kyoto in April.", month, ["month"], ["month"])
    assert read["month"].value == "April"


def test_named_entities_say_which_value_a_parameter_takes() -> None:
    from orchestrator.specialists.backends.entities import EntityRecognizer

    recognizer = EntityRecognizer()
    text = "How many years of experience does the lawyer Maria Lopez have in Chicago?"
    labels = {text[a:b]: label for a, b, label in recognizer(text)}
    assert labels == {"Maria Lopez": "PERSON", "Chicago": "GPE"}
    lawyer = {
        "lawyer_name": {"type": "string", "description": "Name of the lawyer."},
        "city": {"type": "string", "description": "City of the practice."},
    }
    names = ["lawyer_name", "city"]
    with recorded_candidates() as groups:
        read = assign_arguments(text, lawyer, names, names, entities=recognizer)
    assert read["lawyer_name"].value == "Maria Lopez" and read["city"].value == "Chicago"
    options = {g.parameter: dict(g.options) for g in groups}
    # A person for a name, a place for a city; a piece of a name or a name with more words
    # is told apart from the whole name.
    assert options["lawyer_name"]["Maria Lopez"]["entity_of_the_kind_asked"] == 1.0
    assert options["city"]["Maria Lopez"]["entity_of_another_kind"] == 1.0
    assert options["city"]["Chicago"]["entity_of_the_kind_asked"] == 1.0
    assert options["lawyer_name"]["Maria"]["part_of_an_entity"] == 1.0
    assert options["lawyer_name"]["lawyer Maria Lopez"]["entity_and_more_words"] == 1.0
    without = assign_arguments(text, lawyer, names, names)
    assert without["lawyer_name"].value == "Maria Lopez"  # the reader works without them too


def test_noun_runs_say_where_a_value_that_names_a_thing_begins_and_ends() -> None:
    from orchestrator.specialists.backends.entities import EntityRecognizer

    recognizer = EntityRecognizer()
    text = "Add 2 bags of espresso beans and turn on the living room lights"
    runs = [text[a:b] for a, b in recognizer.noun_runs(text)]
    assert runs == ["bags", "espresso beans", "living room lights"]
    cart = {
        "product": {"type": "string", "description": "What to add."},
        "room": {"type": "string", "description": "Which room."},
    }
    names = ["product", "room"]
    with recorded_candidates() as groups:
        assign_arguments(text, cart, names, names, entities=recognizer)
    options = {g.parameter: dict(g.options) for g in groups}
    product, room = options["product"], options["room"]
    # A whole run, its start, its last word alone, and a run with words beyond it are told
    # apart; its words are not counted as extra words.
    assert product["espresso beans"]["noun_run"] == 1.0
    assert product["espresso beans"]["noun_run_words"] == 1.0
    assert "extra_plain_words" not in product["espresso beans"]
    assert product["beans"]["noun_run_end"] == 1.0
    assert product["espresso"]["noun_run_start"] == 1.0
    assert product["beans and turn"]["part_of_a_noun_run_and_more"] == 1.0
    # "2 bags of": a word that measures the thing named after it.
    assert product["bags"]["measure_word"] == 1.0
    # The parameter's name as the last word of the run is what the value is ("living
    # room"), not a label beside it.
    assert room["living room"]["ends_in_parameter_name"] == 1.0
    assert "holds_parameter_name" not in room["living room"]
    assert room["room lights"]["holds_parameter_name"] == 1.0
    # What the shipped weights learned from them.
    weights = ARGUMENT_WEIGHTS.features
    assert weights["noun_run_end"] < weights["noun_run"]
    assert weights["measure_word"] < 0 < weights["ends_in_parameter_name"]


def test_leaving_a_parameter_out_is_weighed_like_its_values() -> None:
    hotel = {
        "city": {"type": "string", "description": "City of the hotel."},
        "nights": {"type": "integer", "description": "Number of nights."},
        "guests": {"type": "integer", "description": "Number of guests."},
        "rooms": {"type": "integer", "description": "Rooms to book.", "default": 1},
    }
    names = list(hotel)
    text = "a hotel in Kyoto for 4 nights for 2 guests"
    with recorded_candidates() as groups:
        read = assign_arguments(text, hotel, names, ["city", "nights"])
    assert {n: read[n].value for n in names} == {
        "city": "Kyoto",
        "nights": 4,
        "guests": 2,  # optional, but the request names it and gives its value
        "rooms": None,  # optional with a default, and not spoken of
    }
    left_out = {g.parameter: g.options[0] for g in groups}
    spare = {"omitted_with_numbers_to_spare": 1.0}  # two numbers, one required number
    assert left_out["guests"] == (
        None,
        {"left_out_optional": 1.0, "omitted_though_named": 1.0, **spare},
    )
    assert left_out["rooms"] == (
        None,
        {"left_out_optional": 1.0, "omitted_with_default": 1.0, **spare},
    )
    assert left_out["city"] == (None, {"left_out_required": 1.0})
    # What a default says is learned, not set: leaving such a parameter out scores higher.
    assert ARGUMENT_WEIGHTS.features["omitted_with_default"] > 0


def test_the_recognizer_answers_threads_as_it_answers_one_caller() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from orchestrator.specialists.backends.entities import EntityRecognizer

    texts = [
        f"Book a table for {n} at Nopa in San Francisco and call Maria Lopez" for n in range(40)
    ]
    alone = [tuple(EntityRecognizer()(t)) for t in texts[:3]]
    shared = EntityRecognizer()
    with ThreadPoolExecutor(max_workers=4) as pool:
        spans = list(pool.map(lambda t: tuple(shared(t)), texts))
        breaks = list(pool.map(shared.clause_breaks, texts))
    assert spans[:3] == alone
    assert all({label for *_, label in s} >= {"GPE", "PERSON"} for s in spans)
    assert all(b == (texts[i].index(" and call") + 1,) for i, b in enumerate(breaks))


def test_a_number_is_weighed_by_the_word_it_counts() -> None:
    trip = {
        "passengers": {"type": "integer", "description": "Number of passengers."},
        "nights": {"type": "integer", "description": "Length of the stay."},
    }
    asked: list[tuple[list[str], list[str]]] = []

    def similarity(described: list[str], texts: list[str]) -> list[list[float]]:
        asked.append((described, texts))
        return [[0.6 if "passengers" in d else 0.1 for _ in texts] for d in described]

    names = list(trip)
    with recorded_candidates() as groups:
        read = assign_arguments("3 people for 4 nights", trip, names, [], similarity=similarity)
    assert asked[0][1] == ["people", "nights"]  # the counted words, one encoder call
    options = {g.parameter: dict(g.options) for g in groups}
    assert options["passengers"][3]["number:unit_meaning"] == 0.6
    assert options["nights"][4]["number:names_its_unit"] == 1.0  # "4 *nights*"
    assert read["nights"].value == 4
    # Two numbers and no required number: an optional one is likely given.
    assert options["passengers"][None]["omitted_with_numbers_to_spare"] == 1.0
    weights = ARGUMENT_WEIGHTS.features
    assert weights["number:unit_meaning"] > 0 > weights["omitted_with_numbers_to_spare"]
