"""Scoring rows with the LLM judge: shortcut, cache, batched asking, strict parsing, failure counting.

For each row: a prediction equal to the ground truth gets full marks without asking (docs/method.md#llm-judge); otherwise the
reply is taken from the cache or asked for, in batches, and each batch is stored in the cache as soon as it comes
back (so an interrupted run resumes where it stopped). Every reply is parsed on every run; a reply that gives no
score on the rubric's scale is a failure, kept in the rows and counted next to every mean, never turned into 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from sure_vqa.evaluate.judge.backends import JudgeBackend
from sure_vqa.evaluate.judge.cache import JudgeCache, fingerprint
from sure_vqa.evaluate.judge.parser import parse_score
from sure_vqa.evaluate.judge.rubrics import Prompt, same_answer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JudgeItem:
    """One row to score and the rubric it is routed to."""

    qid: str
    question: str
    gt: str
    pred: str
    answer_type: str
    rubric: str


@dataclass(frozen=True)
class Judgment:
    """The score of one row (None for a judge failure), with the judge's raw reply and why it failed."""

    qid: str
    question: str
    gt: str
    pred: str
    answer_type: str
    rubric: str
    prompt_version: str
    score: float | None
    shortcut: bool
    judge_reply: str | None
    failure: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JudgeRunStats:
    """What a run cost: rows given full marks by the shortcut, and distinct replies found in the cache or asked."""

    shortcut: int = 0
    cached: int = 0
    asked: int = 0


def score_items(
    items: Sequence[JudgeItem],
    prompts: Mapping[str, Prompt],
    judge_identity: str,
    cache: JudgeCache,
    backend_factory: Callable[[], JudgeBackend],
    batch_size: int,
    stats: JudgeRunStats | None = None,
) -> list[Judgment]:
    """Judgments in the order of `items`. `backend_factory` is called only if some reply is not cached."""
    stats = stats if stats is not None else JudgeRunStats()
    keys: list[str | None] = []
    for item in items:
        if same_answer(item.gt, item.pred):
            keys.append(None)
            stats.shortcut += 1
            continue
        prompt = prompts[item.rubric]
        keys.append(fingerprint(prompt.id, prompt.text_hash, judge_identity, item.question, item.gt, item.pred))

    replies = cache.get_many(k for k in keys if k is not None)
    pending: dict[str, JudgeItem] = {}
    for key, item in zip(keys, items, strict=True):
        if key is not None and key not in replies and key not in pending:
            pending[key] = item
    stats.cached += len(replies)  # distinct replies found; a row repeated in `items` is asked (or found) once
    if pending:
        _ask(pending, prompts, judge_identity, cache, backend_factory(), batch_size, replies, stats)

    judgments = []
    for key, item in zip(keys, items, strict=True):
        prompt = prompts[item.rubric]
        if key is None:
            score, reply, failure = prompt.rubric.full_marks, None, None
        else:
            reply = replies[key]
            parsed = parse_score(reply, prompt.rubric.scale)
            score, failure = parsed.score, parsed.failure
        judgments.append(
            Judgment(item.qid, item.question, item.gt, item.pred, item.answer_type, item.rubric, prompt.id, score,
                     key is None, reply, failure)
        )
    return judgments


def _ask(
    pending: Mapping[str, JudgeItem],
    prompts: Mapping[str, Prompt],
    judge_identity: str,
    cache: JudgeCache,
    backend: JudgeBackend,
    batch_size: int,
    replies: dict[str, str],
    stats: JudgeRunStats,
) -> None:
    # Similar lengths in one batch waste less padding; the order of asking does not change any reply.
    order = sorted(pending, key=lambda k: len(pending[k].question) + len(pending[k].gt) + len(pending[k].pred))
    with tqdm(total=len(order), desc="judge", unit="row") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            conversations = [
                prompts[pending[k].rubric].messages(pending[k].question, pending[k].gt, pending[k].pred) for k in batch
            ]
            answers = backend.generate(conversations)
            new = dict(zip(batch, answers, strict=True))
            cache.put_many(new, {k: prompts[pending[k].rubric].id for k in batch}, judge_identity)
            replies.update(new)
            stats.asked += len(batch)
            bar.update(len(batch))


def summarize(
    judgments: Sequence[Judgment], judge_name: str, judge_identity: str, prompt_version: str | list[str]
) -> dict[str, Any]:
    """The mean over scored rows (None if none), with the counts, the judge and the prompt version next to it."""
    scores = [j.score for j in judgments if j.score is not None]
    return {
        "avg_score": sum(scores) / len(scores) if scores else None,
        "n_rows": len(judgments),
        "n_scored": len(scores),
        "n_failures": sum(1 for j in judgments if j.failure is not None),
        "n_shortcut": sum(1 for j in judgments if j.shortcut),
        "judge": judge_name,
        "judge_identity": judge_identity,
        "prompt_version": prompt_version,
    }
