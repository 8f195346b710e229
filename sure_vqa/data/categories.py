"""Answer categories of closed questions (docs/method.md#datasets), derived from the data so that no user adds them by hand.

Closed accuracy (docs/method.md#traditional-metrics) asks which of a question's categories the prediction names, so every closed
question needs its categories:

- a yes/no question (its answer is yes or no, case and a trailing period ignored) -> ["yes", "no"];
- an "A or B" question -> the options parsed from the question ("Which organ is abnormal, heart or lung?" ->
  ["heart", "lung"]), kept only if the ground truth names exactly one of them;
- any other closed question -> the answers that closed questions of the same question type have in the dataset;
- MIMIC-CXR-VQA choose questions -> the two options of their template plus "both" and "none" (only the two
  options for the AP/PA and male/female questions, whose template has no option placeholders).

No library parses option lists out of free-text questions, so the small parser below is written here; it is
deliberately conservative, and whatever it can't parse falls back to the answer set of the question type.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sure_vqa.data.records import CLOSED, QARecord

YES_NO = ("yes", "no")
BOTH = "both"
NONE = "none"

_ARTICLES = frozenset({"a", "an", "the"})
# Words that can't be part of an option: where one occurs, the question's stem has begun.
_STEM_WORDS = _ARTICLES | frozenset(
    {
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "does",
        "do",
        "did",
        "can",
        "could",
        "has",
        "have",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "there",
        "which",
        "what",
        "where",
        "who",
        "whose",
        "how",
        "in",
        "on",
        "at",
        "of",
        "with",
        "by",
        "to",
        "from",
        "for",
        "either",
        "both",
        "taken",
        "used",
        "show",
        "shows",
        "contain",
        "contains",
    }
)
_WH_WORDS = frozenset({"which", "what", "where", "who", "whose", "whom", "how"})
_LAST_OR = re.compile(r",?\s+or\s+", re.IGNORECASE)
_TEMPLATE_PAIR = re.compile(r"\$\{(\w+?)_(\d+)\} or (?:the )?\$\{(\w+?)_(\d+)\}")
_MAX_OPTION_WORDS = 3


def normalise_yes_no(answer: str) -> str | None:
    """ "Yes", "no." -> "yes", "no"; anything else -> None."""
    text = str(answer).strip().lower()
    text = text[:-1] if text.endswith(".") else text
    return text if text in YES_NO else None


def mentions(text: str, category: str) -> bool:
    """Whether `category` occurs in `text` as a whole word or phrase, ignoring case (docs/method.md#traditional-metrics)."""
    return re.search(rf"(?<!\w){re.escape(category.strip())}(?!\w)", text, re.IGNORECASE) is not None


def categories_mentioned(text: str, categories: Iterable[str]) -> list[str]:
    return [c for c in categories if mentions(text, c)]


def _words(text: str) -> list[str]:
    return [w.strip("\"'") for w in text.split() if w.strip("\"'")]


def _without_leading_articles(words: list[str]) -> list[str]:
    while words and words[0].lower() in _ARTICLES:
        words = words[1:]
    return words


def _has_stem_word(words: Sequence[str]) -> bool:
    return any(w.lower() in _STEM_WORDS for w in words)


def _tail_option(stem_words: list[str], size: int) -> list[str] | None:
    """The last `size` words of the question's stem, or fewer if the stem's own words begin sooner."""
    for k in range(min(size, len(stem_words)), 0, -1):
        tail = stem_words[-k:]
        if not _has_stem_word(tail):
            return tail
    return None


def _parallel_pair(left: list[str], right: list[str]) -> tuple[list[str], list[str]] | None:
    """The two options around a bare "or": the widest k words that don't reach into the stem and, beyond one
    word, end on the same head word ("CT image or X-Ray image", "T1 weighted or T2 weighted MRI")."""
    for k in range(min(_MAX_OPTION_WORDS, len(left), len(right)), 0, -1):
        a, b = left[-k:], right[:k]
        if _has_stem_word(a):
            continue
        if k == 1 or a[-1].lower() == b[-1].lower():
            return a, b
    return None


def _trim_shared_words(options: list[list[str]]) -> list[list[str]]:
    """Drops the words every option shares at its end or start ("CT image", "X-Ray image" -> "CT", "X-Ray")."""
    while all(len(o) > 1 for o in options) and len({o[-1].lower() for o in options}) == 1:
        options = [o[:-1] for o in options]
    while all(len(o) > 1 for o in options) and len({o[0].lower() for o in options}) == 1:
        options = [o[1:] for o in options]
    return options


def _unique(options: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for option in options:
        option = option.strip(" ,;:")
        if option and option.lower() not in seen:
            seen[option.lower()] = option
    return list(seen.values())


def options_in_question(question: str) -> list[str] | None:
    """The options an "A or B" / "A, B or C" question offers, or None when it offers none that can be parsed.

    >>> options_in_question("Which organ is abnormal, heart or lung?")
    ['heart', 'lung']
    >>> options_in_question("Is this a CT image or X-Ray image?")
    ['CT', 'X-Ray']
    """
    text = re.sub(r"[?.!\s]+$", "", question.strip())
    found = list(_LAST_OR.finditer(text))
    if not found:
        return None
    last_or = found[-1]
    left, right = text[: last_or.start()], text[last_or.end() :]
    right_words = _without_leading_articles(_words(right))
    if not right_words:
        return None
    listed = [_without_leading_articles(_words(item)) for item in left.split(",")[1:]]
    if listed and all(item and not _has_stem_word(item) for item in listed):
        # "Which organ is abnormal, heart or lung?", "Is this a T1 weighted, T2 weighted, or FLAIR image?"
        size = max(len(item) for item in listed)
        stem_words = _words(left.split(",")[0])
        if stem_words and stem_words[0].lower() not in _WH_WORDS:  # the stem ends with the first option
            first = _tail_option(stem_words, size)
            if first is None:
                return None
            listed.insert(0, first)
        options = [*listed, right_words[:size]]
    else:
        # a bare "A or B", also after an introductory clause ("In this image, is the liver left or right?")
        pair = _parallel_pair(_words(left.split(",")[-1]), right_words)
        if pair is None:
            return None
        options = list(pair)
    options = _unique(" ".join(o) for o in _trim_shared_words(options))
    return options if len(options) >= 2 else None


def shorten_to_answers(options: Sequence[str], answers: Iterable[str]) -> list[str]:
    """Replaces an option by the one known answer that it contains as a phrase: with answers "T1" and "T2",
    "T1 weighted" / "T2 weighted MRI" become "T1" / "T2", so that a short prediction still matches."""
    answers = _unique(answers)
    shortened = []
    for option in options:
        inside = [a for a in answers if a.lower() != option.lower() and mentions(option, a)]
        shortened.append(inside[0] if len(inside) == 1 else option)
    return _unique(shortened)


# MIMIC-CXR-VQA choose questions whose two options are fixed by their content type, whatever the wording
# ("In which view was this image taken, AP or PA?", "Please specify the gender of this patient, female or male.").
MIMIC_FIXED_OPTIONS = {"plane": ("AP", "PA"), "gender": ("male", "female")}


def mimic_choose_options(template: str, template_arguments: Mapping[str, Any], question: str,
                         content_type: str | None = None) -> list[str]:
    """The categories of a MIMIC-CXR-VQA choose question (docs/method.md#datasets).

    Plane and gender questions take their two fixed options. Otherwise `${attribute_1} or ${attribute_2}` names
    template_arguments["attribute"]["0"] and ["1"] (the JSON keys are strings, but int keys from a re-serialised
    file are accepted too), and a template without placeholders falls back to the options in the question.
    Raises ValueError when nothing can be parsed.
    """
    if content_type in MIMIC_FIXED_OPTIONS:
        return list(MIMIC_FIXED_OPTIONS[content_type])
    pair = _TEMPLATE_PAIR.search(template)
    if pair is not None:
        options = []
        for kind, number in ((pair.group(1), pair.group(2)), (pair.group(3), pair.group(4))):
            values = template_arguments.get(kind) or {}
            index = int(number) - 1
            value = values.get(str(index), values.get(index))
            if value is None:
                raise ValueError(f"template argument {kind}_{number} is missing from template_arguments")
            options.append(str(value))
        return [*options, BOTH, NONE]
    options = options_in_question(question)
    if options is None or len(options) != 2:
        raise ValueError(
            f"no two options can be read from the template {template!r} or the question {question!r}"
        )
    return options


def _canonical_spellings(answers: Iterable[str]) -> list[str]:
    """Answers that differ only in case count as one; the most frequent spelling names it (ties: sorted)."""
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    for answer in answers:
        spellings[answer.strip().lower()][answer.strip()] += 1
    chosen = [min(c, key=lambda s: (-c[s], s)) for c in spellings.values()]
    return sorted(chosen, key=str.lower)


def derive_categories(records: Sequence[QARecord], question_type_field: str | None) -> list[QARecord]:
    """Every closed record with its categories; records whose reader already set them are kept as they are.

    `question_type_field` names the field whose closed answers form the fallback set (SLAKE `content_type`,
    OVQA `question_type`); None means the fallback is the set of all closed answers that aren't yes/no.
    """
    answers_of_question: dict[str, list[str]] = defaultdict(list)
    answers_of_type: dict[Any, list[str]] = defaultdict(list)
    for record in records:
        if record.answer_type != CLOSED:
            continue
        answers_of_question[record.question.strip().lower()].append(record.answer)
        if normalise_yes_no(record.answer) is None:
            key = record.fields.get(question_type_field) if question_type_field else None
            answers_of_type[key].append(record.answer)
    fallback = {key: _canonical_spellings(answers) for key, answers in answers_of_type.items()}
    parsed: dict[str, list[str] | None] = {}

    derived = []
    for record in records:
        if record.answer_type != CLOSED or record.categories is not None:
            derived.append(record)
            continue
        if normalise_yes_no(record.answer) is not None:
            derived.append(replace(record, categories=list(YES_NO)))
            continue
        question_key = record.question.strip().lower()
        if question_key not in parsed:
            options = options_in_question(record.question)
            if options is not None:
                options = shorten_to_answers(options, answers_of_question[question_key])
            parsed[question_key] = options if options and len(options) >= 2 else None
        options = parsed[question_key]
        if options is None or len(categories_mentioned(record.answer, options)) != 1:
            key = record.fields.get(question_type_field) if question_type_field else None
            options = fallback[key]
        derived.append(replace(record, categories=list(options)))
    return derived
