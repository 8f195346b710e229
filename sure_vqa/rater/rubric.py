"""The scales raters use: the LLM judge's own rubrics (docs/method.md#llm-judge), so that human and judge scores compare.

The values and the routing of a question to a rubric come from `sure_vqa.evaluate.judge.rubrics`, the one place that
defines them; this module adds what a person needs to see: a label per value and a short instruction, worded
as in the judge's prompt files. Open questions: 1-5 stars. Closed questions with one right answer (yes/no,
"A or B"): 0/1. Two options plus "both"/"none": 0, 0.5 or 1. A score is valid only when it is exactly one of
its scale's values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sure_vqa.evaluate.judge import rubrics as judge_rubrics


@dataclass(frozen=True)
class Scale:
    """One rubric as raters see it: the valid scores, a label for each, and the instruction."""

    name: str
    title: str
    values: tuple[float, ...]
    labels: tuple[str, ...]
    instruction: str

    def check(self, score: object) -> float:
        """The score as a float if it is on this scale; ValueError naming the valid values otherwise.

        Booleans are refused although Python treats them as numbers: `true` is not a rating.
        """
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            raise ValueError(f"score {score!r} is not a number; valid scores: {self.valid_text()}")
        if float(score) not in self.values:
            raise ValueError(f"score {score!r} is not on the {self.name} scale; valid scores: {self.valid_text()}")
        return float(score)

    def valid_text(self) -> str:
        return ", ".join(f"{v:g}" for v in self.values)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "instruction": self.instruction,
            "options": [{"value": v, "label": label} for v, label in zip(self.values, self.labels, strict=True)],
        }


def _scale(kind: str, title: str, labels: tuple[str, ...], instruction: str) -> Scale:
    values = judge_rubrics.RUBRICS[kind].scale
    if len(values) != len(labels):
        raise RuntimeError(f"the judge's {kind} rubric has {len(values)} values but {len(labels)} labels here")
    return Scale(kind, title, tuple(float(v) for v in values), labels, instruction)


OPEN = _scale(
    judge_rubrics.OPEN,
    "Open questions",
    ("incorrect", "partially correct", "mostly correct", "correct with minor deviations", "perfect match"),
    "Compare the model's answer with the ground truth and give one to five stars. Synonyms and different "
    "wording of the same meaning count as matching.",
)
CLOSED = _scale(
    judge_rubrics.CLOSED,
    "Closed questions with one right answer",
    ("incorrect: a different answer, several answers or none", "correct: the same answer"),
    "The question has one right answer (yes/no, or one of two named options). Synonyms and harmless extra "
    "words count as correct.",
)
TWO_OPTION = _scale(
    judge_rubrics.TWO_OPTION,
    "Questions with two options, both or none",
    (
        "incorrect: the other option, or both instead of none (or the reverse)",
        "partially correct: one option where the ground truth is both or none (or the reverse)",
        "correct: the same answer",
    ),
    "The question names two options; the right answer is one of them, both or none.",
)
SCALES: dict[str, Scale] = {scale.name: scale for scale in (OPEN, CLOSED, TWO_OPTION)}


def scale_for(answer_type: str, categories: Sequence[str] | None = None) -> Scale:
    """The scale of a question, routed exactly as the judge routes it (answer type and answer categories)."""
    return SCALES[judge_rubrics.route(answer_type, categories)]
