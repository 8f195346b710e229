"""Rubric prompts, routing of open / closed / two-option questions, and the exact-match shortcut."""

from __future__ import annotations

import json

import pytest

from sure_vqa.config import ConfigError
from sure_vqa.evaluate.judge.rubrics import CLOSED, OPEN, RUBRICS, TWO_OPTION, load_prompt, route, same_answer


@pytest.mark.parametrize(
    ("answer_type", "categories", "rubric"),
    [
        ("OPEN", None, OPEN),
        ("open", ["yes", "no"], OPEN),  # answer_type decides first
        ("CLOSED", ["yes", "no"], CLOSED),
        ("CLOSED", ["Yes", "No"], CLOSED),
        ("CLOSED", ["CT", "MRI"], CLOSED),  # SLAKE/OVQA "A or B": one right answer
        ("CLOSED", None, CLOSED),  # categories unknown
        ("CLOSED", ["AP", "PA"], CLOSED),  # MIMIC AP/PA: only the two options
        ("CLOSED", ["left lung", "right lung", "both", "none"], TWO_OPTION),  # MIMIC choose
        ("CLOSED", ["nodule", "mass", "None"], TWO_OPTION),
        ("CLOSED", ["liver", "spleen", "kidney"], CLOSED),  # answer set of a question type: still one answer
    ],
)
def test_route(answer_type: str, categories: list[str] | None, rubric: str) -> None:
    assert route(answer_type, categories) == rubric


@pytest.mark.parametrize(
    ("gt", "pred", "same"),
    [
        ("liver", "liver", True),
        ("Liver", "liver.", True),
        ("left  lung", " Left lung ", True),
        ("liver", "the liver", False),  # anything else is the judge's call
        ("yes", "yes, it is", False),
        ("", "", False),  # nothing to compare: ask the judge (it will fail, and be counted)
    ],
)
def test_same_answer_shortcut(gt: str, pred: str, same: bool) -> None:
    assert same_answer(gt, pred) is same


def test_full_marks_per_rubric() -> None:
    assert [RUBRICS[k].full_marks for k in (OPEN, CLOSED, TWO_OPTION)] == [5.0, 1.0, 1.0]


@pytest.mark.parametrize("kind", [OPEN, CLOSED, TWO_OPTION])
def test_v1_prompts_ask_for_a_json_score(kind: str) -> None:
    prompt = load_prompt(kind, "v1")
    assert prompt.id == f"{kind}.v1"
    assert '{"score":' in prompt.text and prompt.text.rstrip().endswith("Input:")
    messages = prompt.messages("Is this a CT?", "yes", "Ja, \"CT\"")
    assert [m["role"] for m in messages] == ["user"]  # gemma's template has no system role
    row = json.loads(messages[0]["content"][len(prompt.text):])
    assert row == {"question": "Is this a CT?", "gt": "yes", "pred": 'Ja, "CT"'}


def test_prompt_hashes_differ_between_rubrics() -> None:
    hashes = {load_prompt(kind, "v1").text_hash for kind in (OPEN, CLOSED, TWO_OPTION)}
    assert len(hashes) == 3


def test_unknown_prompt_version_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"judge.prompt_version='v9'.*open.v9.txt.*versions of the open prompt: v1"):
        load_prompt(OPEN, "v9")
