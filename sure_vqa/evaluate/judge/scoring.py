"""Scoring rows with the LLM judge: shortcut, cache, batched asking, strict parsing, failure counting.

For each row: a prediction equal to the ground truth gets full marks without asking (docs/method.md#llm-judge); otherwise the
reply is taken from the cache or asked for, in batches, and each batch is stored in the cache as soon as it comes
back (so an interrupted run resumes where it stopped). Every reply is parsed on every run; a reply that gives no
score on the rubric's scale is a failure, kept in the rows and counted next to every mean, never turned into 0.

Two modes (docs/method.md#llm-judge): `generate` (the original's: the judge writes its reply, which is parsed) and
`score` (the reply is started with `rubrics.REPLY_PREFIX` and the judge's probabilities over the scale are read
in one forward pass; the cached "reply" is then the JSON of those log-probabilities).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from sure_vqa import graceful_stop
from sure_vqa.evaluate.judge.backends import JudgeBackend
from sure_vqa.evaluate.judge.cache import JudgeCache, fingerprint
from sure_vqa.evaluate.judge.distribution import (
    NoScoreProbability,
    decode_logprobs,
    distribution,
    encode_logprobs,
)
from sure_vqa.evaluate.judge.parser import parse_score
from sure_vqa.evaluate.judge.rubrics import REPLY_PREFIX, Prompt, same_answer

GENERATE, SCORE = "generate", "score"
MODES = (GENERATE, SCORE)

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
    mode: str = GENERATE
    score_mean: float | None = None  # score mode: the probability-weighted mean over the scale
    score_probability: float | None = None  # score mode: the probability of the argmax (None for the shortcut)

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        if self.mode == GENERATE:  # generate-mode files keep the keys they always had
            for key in ("mode", "score_mean", "score_probability"):
                del row[key]
        return row


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
    mode: str = GENERATE,
) -> list[Judgment]:
    """Judgments in the order of `items`. `backend_factory` is called only if some reply is not cached."""
    stats = stats if stats is not None else JudgeRunStats()
    keys = judge_keys(items, prompts, judge_identity, mode)
    stats.shortcut += sum(1 for key in keys if key is None)
    replies = cache.get_many(k for k in keys if k is not None)
    pending: dict[str, JudgeItem] = {}
    for key, item in zip(keys, items, strict=True):
        if key is not None and key not in replies and key not in pending:
            pending[key] = item
    stats.cached += len(replies)  # distinct replies found; a row repeated in `items` is asked (or found) once
    if pending:
        _ask(pending, prompts, judge_identity, cache, backend_factory(), batch_size, replies, stats, mode)
    return [_judgment(item, prompts[item.rubric], key is None, replies.get(key) if key else None, mode)
            for key, item in zip(keys, items, strict=True)]


def generate_mode_scores(
    items: Sequence[JudgeItem],
    prompts: Mapping[str, Prompt],
    generate_identity: str,
    cache: JudgeCache,
    backend_factory: Callable[[], JudgeBackend] | None,
    batch_size: int,
    stats: JudgeRunStats | None = None,
) -> list[float | None]:
    """Generate mode's parsed score of each row that the shortcut does not score (None otherwise): from the cache
    only when `backend_factory` is None, else asking the judge for the replies the cache lacks."""
    if backend_factory is not None:
        own = JudgeRunStats()  # the shortcut rows were counted by the score-mode pass already
        judgments = score_items(items, prompts, generate_identity, cache, backend_factory, batch_size, own)
        if stats is not None:
            stats.asked += own.asked
            stats.cached += own.cached
        return [None if j.shortcut else j.score for j in judgments]
    keys = judge_keys(items, prompts, generate_identity)
    replies = cache.get_many(k for k in keys if k is not None)
    return [parse_score(replies[key], prompts[item.rubric].rubric.scale).score if key in replies else None
            for key, item in zip(keys, items, strict=True)]


def judge_keys(items: Sequence[JudgeItem], prompts: Mapping[str, Prompt], judge_identity: str,
               mode: str = GENERATE) -> list[str | None]:
    """Each row's cache key, None for a row the shortcut scores. Score mode's keys also cover the reply prefix
    and the scale's continuations (the judge identity names the mode)."""
    keys: list[str | None] = []
    for item in items:
        if same_answer(item.gt, item.pred):
            keys.append(None)
            continue
        prompt = prompts[item.rubric]
        prompt_part = prompt.text_hash
        if mode == SCORE:
            prompt_part += "|" + REPLY_PREFIX + "|" + "|".join(prompt.rubric.continuations)
        keys.append(fingerprint(prompt.id, prompt_part, judge_identity, item.question, item.gt, item.pred))
    return keys


def _judgment(item: JudgeItem, prompt: Prompt, shortcut: bool, reply: str | None, mode: str) -> Judgment:
    scale = prompt.rubric.scale
    mean = probability = None
    if shortcut:
        score, failure = prompt.rubric.full_marks, None
        mean = score if mode == SCORE else None
    elif mode == SCORE:
        try:
            scored = distribution(scale, decode_logprobs(str(reply), scale))
            score, failure, mean, probability = scored.score, None, scored.mean, scored.top_probability
        except NoScoreProbability as err:
            score, failure = None, str(err)
        except (ValueError, LookupError, TypeError):
            score, failure = None, "cached reply is not a score-mode reply"
    else:
        parsed = parse_score(reply, scale)
        score, failure = parsed.score, parsed.failure
    return Judgment(item.qid, item.question, item.gt, item.pred, item.answer_type, item.rubric, prompt.id, score,
                    shortcut, reply, failure, mode, mean, probability)


def _ask(
    pending: Mapping[str, JudgeItem],
    prompts: Mapping[str, Prompt],
    judge_identity: str,
    cache: JudgeCache,
    backend: JudgeBackend,
    batch_size: int,
    replies: dict[str, str],
    stats: JudgeRunStats,
    mode: str,
) -> None:
    # One rubric per batch (score mode shares the rubric's encoded prefix), similar lengths in one batch (less
    # padding); the order of asking does not change any reply.
    order = sorted(pending, key=lambda k: (pending[k].rubric,
                                           len(pending[k].question) + len(pending[k].gt) + len(pending[k].pred)))
    batches: list[list[str]] = []
    for key in order:
        if batches and len(batches[-1]) < batch_size and pending[batches[-1][0]].rubric == pending[key].rubric:
            batches[-1].append(key)
        else:
            batches.append([key])
    with tqdm(total=len(order), desc=f"judge ({mode} mode)", unit="row") as bar:
        for batch in batches:
            prompt = prompts[pending[batch[0]].rubric]
            conversations = [prompt.messages(pending[k].question, pending[k].gt, pending[k].pred) for k in batch]
            if mode == SCORE:
                scale = prompt.rubric.scale
                answers = [encode_logprobs(scale, logprobs) for logprobs in backend.score(
                    conversations, REPLY_PREFIX, prompt.rubric.continuations, shared_text=prompt.text)]
            else:
                answers = backend.generate(conversations)
            new = dict(zip(batch, answers, strict=True))
            cache.put_many(new, {k: prompts[pending[k].rubric].id for k in batch}, judge_identity)
            replies.update(new)
            stats.asked += len(batch)
            bar.update(len(batch))
            graceful_stop.check(lambda: f"{stats.asked} new judge replies are kept in the judge cache {cache.path} "
                                "(with every earlier one); rerun the same command: they are not asked again")


def summarize(
    judgments: Sequence[Judgment], judge_name: str, judge_identity: str, prompt_version: str | list[str],
    mode: str = GENERATE,
) -> dict[str, Any]:
    """The mean over scored rows (None if none), with the counts, the judge and the prompt version next to it."""
    scores = [j.score for j in judgments if j.score is not None]
    summary: dict[str, Any] = {
        "avg_score": sum(scores) / len(scores) if scores else None,
        "n_rows": len(judgments),
        "n_scored": len(scores),
        "n_failures": sum(1 for j in judgments if j.failure is not None),
        "n_shortcut": sum(1 for j in judgments if j.shortcut),
        "judge": judge_name,
        "judge_identity": judge_identity,
        "prompt_version": prompt_version,
    }
    if mode == SCORE:
        means = [j.score_mean for j in judgments if j.score_mean is not None]
        summary["mode"] = SCORE
        summary["avg_score_mean"] = sum(means) / len(means) if means else None
    return summary
