"""The judge's three rubrics (docs/method.md#llm-judge), their versioned prompt files, routing and the exact-match shortcut.

Prompts live in `sure_vqa/judge/prompts/{rubric}.{version}.txt`. A changed prompt gets a new version file; the
version and a hash of the text are part of every cache key and are written next to every mean, so scores from
different prompts are never mixed up.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from sure_vqa.config import ConfigError

OPEN = "open"  # open questions: 1-5 stars
CLOSED = "closed"  # closed questions with one right answer (yes/no, "A or B"): 0 or 1
TWO_OPTION = "two_option"  # "A or B / both / none" questions: 0, 0.5 or 1
CLOSED_RUBRICS = (CLOSED, TWO_OPTION)  # the rubrics of closed questions, in the closed judge file's order
BOTH_NONE = frozenset({"both", "none"})


# Score mode (docs/method.md#llm-judge): the judge's reply is started with this prefix, and each value of the
# scale is scored as the continuation that writes it and closes the object (" 4}"), so "0" and "0.5" differ.
REPLY_PREFIX = '{"score":'


@dataclass(frozen=True)
class Rubric:
    """A scoring scale: the values a judge may answer and the full marks the shortcut gives."""

    kind: str
    scale: tuple[float, ...]

    @property
    def full_marks(self) -> float:
        return max(self.scale)

    @property
    def continuations(self) -> tuple[str, ...]:
        """What follows REPLY_PREFIX for each value of the scale, in scale order, as the prompt asks for it."""
        return tuple(f" {value:g}}}" for value in self.scale)


RUBRICS: dict[str, Rubric] = {
    OPEN: Rubric(OPEN, (1.0, 2.0, 3.0, 4.0, 5.0)),
    CLOSED: Rubric(CLOSED, (0.0, 1.0)),
    TWO_OPTION: Rubric(TWO_OPTION, (0.0, 0.5, 1.0)),
}


@dataclass(frozen=True)
class Prompt:
    """One versioned prompt file of one rubric."""

    rubric: Rubric
    version: str
    text: str

    @property
    def id(self) -> str:
        """`open.v1`: the name written next to every mean."""
        return f"{self.rubric.kind}.{self.version}"

    @property
    def text_hash(self) -> str:
        """Part of the cache key, so that an edited prompt file never reuses old answers."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def messages(self, question: str, gt: str, pred: str) -> list[dict[str, str]]:
        """One user turn (gemma's chat template has no system role): the rubric, then the row as JSON."""
        row = json.dumps({"question": question, "gt": gt, "pred": pred}, ensure_ascii=False)
        return [{"role": "user", "content": self.text + row}]


def _prompt_files() -> dict[tuple[str, str], str]:
    files = resources.files("sure_vqa.evaluate.judge") / "prompts"
    found = {}
    for entry in files.iterdir():
        name = entry.name
        if name.endswith(".txt") and name.count(".") == 2:
            kind, version, _ = name.split(".")
            found[(kind, version)] = name
    return found


@functools.cache
def load_prompt(kind: str, version: str) -> Prompt:
    """The prompt of a rubric at a version; the error lists the versions that exist."""
    if kind not in RUBRICS:
        raise ConfigError(f"judge rubric {kind!r} is not known; valid rubrics: {', '.join(RUBRICS)}")
    files = _prompt_files()
    if (kind, version) not in files:
        versions = sorted(v for k, v in files if k == kind)
        raise ConfigError(
            f"judge.prompt_version={version!r}: there is no prompt file {kind}.{version}.txt in "
            f"sure_vqa/judge/prompts; versions of the {kind} prompt: {', '.join(versions)}"
        )
    text = (resources.files("sure_vqa.evaluate.judge") / "prompts" / files[(kind, version)]).read_text(encoding="utf-8")
    return Prompt(RUBRICS[kind], version, text)


def route(answer_type: str, categories: Sequence[str] | None) -> str:
    """Which rubric scores a row.

    Open questions get the 1-5 rubric. A closed question whose categories are two options plus "both" and/or
    "none" (MIMIC-CXR-VQA's choose questions) gets the 0/0.5/1 rubric; every other closed question (yes/no,
    "A or B", unknown categories) has one right answer and gets the 0/1 rubric.
    """
    if str(answer_type).upper() == "OPEN":
        return OPEN
    folded = {str(c).strip().casefold() for c in categories or ()}
    if folded & BOTH_NONE and len(folded - BOTH_NONE) == 2:
        return TWO_OPTION
    return CLOSED


def same_answer(gt: str, pred: str) -> bool:
    """The exact-match shortcut: equal up to case, surrounding/inner whitespace and a final period."""

    def canonical(text: str) -> str:
        return " ".join(str(text).split()).casefold().removesuffix(".").strip()

    return canonical(gt) == canonical(pred) and canonical(gt) != ""
