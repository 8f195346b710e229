"""Answer categories of closed questions (docs/method.md#datasets), on hand-worked questions."""

import pytest

from sure_vqa.data.categories import (
    derive_categories,
    mentions,
    mimic_choose_options,
    normalise_yes_no,
    options_in_question,
    shorten_to_answers,
)
from sure_vqa.data.records import QARecord


@pytest.mark.parametrize(
    ("question", "options"),
    [
        ("Which organ is abnormal, heart or lung?", ["heart", "lung"]),
        ("Which is the biggest in this image,lung,liver or heart?", ["lung", "liver", "heart"]),
        ("Which modality is used to take this image, CT or MRI?", ["CT", "MRI"]),
        ("Is this a CT image or X-Ray image?", ["CT", "X-Ray"]),  # the shared head word is dropped
        ("Is this an MRI or a CT scan?", ["MRI", "CT"]),
        ("Was this image taken with an MRI or CT scanner?", ["MRI", "CT"]),
        ("Is the lesion on the left or right side of the lung?", ["left", "right"]),
        ("Is this a T1 weighted or T2 weighted MRI?", ["T1", "T2"]),
        (
            "Is this a T1 weighted, T2 weighted, or FLAIR image?",
            ["T1 weighted", "T2 weighted", "FLAIR image"],
        ),
        ("Does the picture show the small bowel or the large bowel?", ["small", "large"]),
        ("Which view is in this image, AP or PA?", ["AP", "PA"]),
        ("What is the gender of this patient, male or female?", ["male", "female"]),
        ("In this image, is the liver on the left or right?", ["left", "right"]),
        ("Is the liver healthy?", None),
        ("Is it a or b?", None),  # "a" is an article, never an option
        ("Which one, or?", None),
    ],
)
def test_options_in_question(question, options):
    assert options_in_question(question) == options


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("Yes", "yes"), ("no.", "no"), (" NO ", "no"), ("yes!", None), ("Yes, it is", None), ("2", None)],
)
def test_yes_no_ignores_case_and_one_trailing_period(answer, expected):
    assert normalise_yes_no(answer) == expected


@pytest.mark.parametrize(
    ("text", "category", "found"),
    [
        ("It is a CT scan", "CT", True),
        ("CTA of the head", "CT", False),
        ("an x-ray image", "X-Ray", True),
        ("the left lung", "left lung", True),
        ("leftover", "left", False),
        ("none.", "none", True),
    ],
)
def test_a_category_matches_as_a_whole_word(text, category, found):
    assert mentions(text, category) is found


def test_options_shrink_to_the_answers_they_contain():
    assert shorten_to_answers(["T1 weighted", "T2 weighted", "FLAIR image"], ["T2", "T1", "FLAIR"]) == [
        "T1",
        "T2",
        "FLAIR",
    ]
    # an option that contains two known answers is ambiguous and stays as it is
    assert shorten_to_answers(["left lung", "heart"], ["left", "lung"]) == ["left lung", "heart"]


def test_mimic_choose_options_come_from_the_template():
    args = {"object": {"0": "left lung", "1": "right lung"}, "attribute": {"0": "atelectasis"}}
    template = "Which anatomical location is related to ${attribute}, the ${object_1} or the ${object_2}?"
    assert mimic_choose_options(template, args, "...") == ["left lung", "right lung", "both", "none"]
    int_keys = {"attribute": {0: "lung opacity", 1: "pleural effusion"}}
    assert mimic_choose_options(
        "Which ${category} is related, ${attribute_1} or ${attribute_2}?", int_keys, "..."
    ) == ["lung opacity", "pleural effusion", "both", "none"]


def test_mimic_view_and_gender_questions_have_only_their_two_options():
    view = "Which view is in this image, AP or PA?"
    gender = "What is the gender of this patient, male or female?"
    assert mimic_choose_options(view, {}, view) == ["AP", "PA"]
    assert mimic_choose_options(gender, {}, gender) == ["male", "female"]


@pytest.mark.parametrize(
    ("template", "args"),
    [
        ("Which ${category} is related, ${attribute_1} or ${attribute_2}?", {"attribute": {"0": "x"}}),
        ("Which finding is it?", {}),
    ],
)
def test_mimic_choose_options_that_cannot_be_read_are_an_error(template, args):
    with pytest.raises(ValueError):
        mimic_choose_options(template, args, template)


def _closed(qid, question, answer, content_type, answer_type="CLOSED", categories=None):
    return QARecord(
        qid=qid,
        image="i.png",
        img_name="i.png",
        question=question,
        answer=answer,
        answer_type=answer_type,
        source="train",
        fields={"content_type": content_type},
        categories=categories,
    )


def test_derive_categories_for_every_kind_of_closed_question():
    records = [
        _closed("1", "Is the liver healthy?", "Yes", "Abnormality"),
        _closed("2", "Which organ is abnormal, heart or lung?", "Lung", "Abnormality"),
        # the options parsed from the question don't contain the answer: the type's answers are used
        _closed("3", "Which organ is abnormal, heart or lung?", "Liver", "Abnormality"),
        _closed("4", "What is the shape of the kidney?", "Oval", "Shape"),
        _closed("5", "What is the shape of the lesion?", "irregular", "Shape"),
        _closed("6", "What is the shape of the mass?", "Irregular", "Shape"),
        _closed("7", "What is the shape of the cyst?", "Irregular", "Shape"),
        _closed("8", "Which organ is this?", "Liver", "Organ", answer_type="OPEN"),
        _closed("9", "Which view, AP or PA?", "ap", "Plane", categories=["AP", "PA"]),
    ]
    derived = {r.qid: r.categories for r in derive_categories(records, "content_type")}
    assert derived == {
        "1": ["yes", "no"],
        "2": ["heart", "lung"],
        "3": ["Liver", "Lung"],  # closed Abnormality answers that aren't yes/no
        "4": ["Irregular", "Oval"],  # one spelling per answer: the most frequent one
        "5": ["Irregular", "Oval"],
        "6": ["Irregular", "Oval"],
        "7": ["Irregular", "Oval"],
        "8": None,
        "9": ["AP", "PA"],  # set by the reader: kept
    }
