"""Every normalisation rule of docs/method.md#traditional-metrics on hand-worked examples."""

from __future__ import annotations

import sys

import pytest

from sure_vqa.evaluate.metrics.normalize import PUNCTUATION, normalize_answer, normalize_tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # lower-case
        ("Left LUNG", "left lung"),
        # punctuation touching a space (or the text's ends) is removed ...
        ("liver , spleen", "liver spleen"),
        ("(left) lung", "left lung"),
        ("yes!", "yes"),
        ("is it? yes", "is it yes"),
        # ... inside a word it becomes a space ...
        ("x-ray", "x ray"),
        ("left/right", "left right"),
        ("t2_weighted", "t2 weighted"),
        ("ct+mri", "ct mri"),
        # ... decided for each occurrence: one spaced hyphen does not glue the other hyphenated word
        ("x-ray - ct", "x ray ct"),
        # a comma between digits is removed (1,000), between words it becomes a space
        ("1,000 cells", "1000 cells"),
        ("liver,spleen", "liver spleen"),
        # a period stays only between digits
        ("3.5 cm", "3.5 cm"),
        ("liver.", "liver"),
        ("e.g. liver", "eg liver"),
        (".5", "5"),
        ("t1.", "t1"),
        # number words (and none) become digits
        ("two", "2"),
        ("zero nine ten", "0 9 10"),
        ("none", "0"),
        ("eleven", "eleven"),
        # articles are dropped, also once a number word was mapped
        ("the liver", "liver"),
        ("a lesion and an organ", "lesion and organ"),
        ("The X-Ray, two.", "x ray 2"),
        # contractions get their apostrophe back; an existing apostrophe is kept
        ("dont know", "don't know"),
        ("isnt it", "isn't it"),
        ("don't", "don't"),
        # characters outside the list are left alone
        ("50% : 2", "50% : 2"),
        # whitespace of any kind separates tokens
        ("  left\tlung\n", "left lung"),
        # empty and punctuation-only answers
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_every_listed_punctuation_mark_is_handled() -> None:
    # docs/method.md#traditional-metrics lists exactly these marks; inside a word each one becomes a space, next to a space it goes.
    assert PUNCTUATION == set(';/[]"{}()=+\\_-><@`,?!')
    for mark in PUNCTUATION:
        assert normalize_tokens(f"ab{mark}cd") == ["ab", "cd"], mark
        assert normalize_tokens(f"ab {mark}cd") == ["ab", "cd"], mark
        assert normalize_tokens(f"ab{mark} cd") == ["ab", "cd"], mark


def test_repeated_tokens_are_kept() -> None:
    assert normalize_tokens("yes yes, yes") == ["yes", "yes", "yes"]


def test_number_like_answers_from_json_are_strings() -> None:
    # SLAKE answers can be JSON numbers; callers pass str(answer)
    assert normalize_answer(str(3)) == "3"
    assert normalize_answer(str(2.5)) == "2.5"


def test_metrics_modules_do_not_import_torch() -> None:
    # Metrics run on a laptop without a GPU stack (the package never imports torch for them), and the registries
    # that naming, the study and the report consult load no torch either. A fresh interpreter shows what the imports pull in.
    import subprocess

    code = (
        "import sys; import sure_vqa.evaluate.metrics.normalize, sure_vqa.evaluate.metrics.traditional; "
        "import sure_vqa.evaluate.metrics.registry as r; r.all_metrics(); "
        "import sure_vqa.models.methods as m; m.names(); import sure_vqa.images.corruptions as c; c.names(); "
        "import sure_vqa.evaluate.judge.parser, sure_vqa.evaluate.judge.rubrics, sure_vqa.evaluate.judge.cache, sure_vqa.evaluate.run; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
