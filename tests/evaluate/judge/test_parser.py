"""The strict judge-reply parser on a table of messy replies (docs/method.md#llm-judge)."""

from __future__ import annotations

import pytest

from sure_vqa.evaluate.judge.parser import parse_score
from sure_vqa.evaluate.judge.rubrics import RUBRICS

OPEN_SCALE = RUBRICS["open"].scale
CLOSED_SCALE = RUBRICS["closed"].scale
TWO_OPTION_SCALE = RUBRICS["two_option"].scale


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ('{"score": 4}', 4.0),
        ('{"score":5}', 5.0),
        ("```json\n{\"score\": 3}\n```", 3.0),  # code fence
        ("```\n{'score': 2}\n```", 2.0),  # single quotes in a bare fence
        ("{'score': 4}", 4.0),  # single quotes
        ("{ score: 4}", 4.0),  # the original prompt's own format, unquoted key
        ("score: 4", 4.0),  # no braces
        ("Score = 1", 1.0),
        ('{"score": "5"}', 5.0),  # number as a string
        ('{"score": 4.0}', 4.0),
        ("The prediction is close. {\"score\": 4} I hope this helps!", 4.0),  # prose around the JSON
        ('Here is my rating:\n{"score": 2, "reason": "partly right"}', 2.0),
        ('{"score": 4} {"score": 4}', 4.0),  # the same score twice is not ambiguous
        ("score: 4.", 4.0),  # sentence-ending period
    ],
)
def test_parses_a_score_on_the_open_scale(reply: str, score: float) -> None:
    parsed = parse_score(reply, OPEN_SCALE)
    assert (parsed.score, parsed.failure) == (score, None)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ('{"score": 7}', "score 7 is not on the scale 1, 2, 3, 4, 5"),  # above the scale
        ('{"score": 0}', "score 0 is not on the scale"),  # below the scale
        ('{"score": -1}', "score -1 is not on the scale"),
        ('{"score": 4.5}', "score 4.5 is not on the scale"),  # between steps
        ("score: 4/5", "no score field"),  # a fraction is not a score
        ("I would give it 4 stars.", "no score field"),  # no score field
        ("4", "no score field"),  # a bare number is not accepted
        ('{"rating": 4}', "no score field"),
        ('{"subscore": 4}', "no score field"),
        ('{"score": 3} ... actually {"score": 4}', "several different scores: 3, 4"),
        ("", "empty reply"),
        ("   \n", "empty reply"),
        (None, "empty reply"),
    ],
)
def test_failures_on_the_open_scale(reply: str | None, reason: str) -> None:
    parsed = parse_score(reply, OPEN_SCALE)
    assert parsed.score is None
    assert parsed.failure is not None and parsed.failure.startswith(reason)


def test_closed_and_two_option_scales() -> None:
    assert parse_score('{"score": 1}', CLOSED_SCALE).score == 1.0
    assert parse_score('{"score": 0}', CLOSED_SCALE).score == 0.0
    assert parse_score('{"score": 0.5}', CLOSED_SCALE).failure == "score 0.5 is not on the scale 0, 1"
    assert parse_score('{"score": 0.5}', TWO_OPTION_SCALE).score == 0.5
    assert parse_score("{'score': .5}", TWO_OPTION_SCALE).score is None  # ".5" is not a number we accept
    assert parse_score('{"score": 2}', TWO_OPTION_SCALE).failure == "score 2 is not on the scale 0, 0.5, 1"
