"""Score mode's result for one row: the judge's probabilities over the rubric's scale (docs/method.md#llm-judge).

A backend returns, for each value of the scale, the log-probability of the continuation that writes it after the
fixed reply prefix (`rubrics.REPLY_PREFIX`), or None where it could not tell (a server's top log-probabilities
that leave a value out). The probabilities are those, renormalised over the scale: the argmax is the score, the
probability-weighted mean and the top probability are kept beside it, and `valid_mass` says how much of the
model's probability the scale's values held before renormalising (a judge that wants to write something else
has little). The cache stores the raw log-probabilities as JSON, so the distribution is recomputed on every run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreDistribution:
    """Probabilities over the scale (same order), and what is read from them."""

    scale: tuple[float, ...]
    probabilities: tuple[float, ...]
    valid_mass: float

    @property
    def score(self) -> float:
        """The argmax; a tie goes to the lower score (no judge gets the benefit of the doubt)."""
        best = max(self.probabilities)
        return next(value for value, p in zip(self.scale, self.probabilities, strict=True) if p == best)

    @property
    def mean(self) -> float:
        return math.fsum(value * p for value, p in zip(self.scale, self.probabilities, strict=True))

    @property
    def top_probability(self) -> float:
        return max(self.probabilities)


class NoScoreProbability(ValueError):
    """None of the scale's values has a log-probability: a judge failure, with this reason."""


def distribution(scale: Sequence[float], logprobs: Sequence[float | None]) -> ScoreDistribution:
    """Renormalises the continuations' log-probabilities over the scale (a missing one counts as probability 0)."""
    if len(scale) != len(logprobs):
        raise ValueError(f"{len(logprobs)} log-probabilities for a scale of {len(scale)} values")
    known = [lp for lp in logprobs if lp is not None and math.isfinite(lp)]
    if not known:
        raise NoScoreProbability("no value of the scale among the judge's log-probabilities")
    top = max(known)
    weights = [math.exp(lp - top) if lp is not None and math.isfinite(lp) else 0.0 for lp in logprobs]
    total = math.fsum(weights)
    return ScoreDistribution(tuple(float(v) for v in scale), tuple(w / total for w in weights),
                             valid_mass=min(1.0, math.exp(top) * total))


def encode_logprobs(scale: Sequence[float], logprobs: Sequence[float | None]) -> str:
    """The cache's text for a score-mode reply: {"logprobs": {"<value>": lp or null, ...}}."""
    return json.dumps({"logprobs": {f"{v:g}": lp for v, lp in zip(scale, logprobs, strict=True)}})


def decode_logprobs(text: str, scale: Sequence[float]) -> list[float | None]:
    """The log-probabilities of a cached score-mode reply, in scale order (ValueError if it is not one)."""
    stored = json.loads(text)["logprobs"]
    return [None if stored.get(f"{v:g}") is None else float(stored[f"{v:g}"]) for v in scale]
