"""A strict parser from a judge's reply to a score on the rubric's scale (docs/method.md#llm-judge).

Accepted: a `score` field with a number, written as JSON (`{"score": 4}`), with single quotes or no quotes
(`{'score': 4}`, `{ score: 4 }` as the original prompt asked), bare (`score: 4`, `Score = 4`), with the number as
a string (`{"score": "4"}`), inside code fences or with prose around it. Everything else is a judge failure with a
reason, never a zero: no score field, a number that is not on the rubric's scale (`7` on 1-5, `4.5` on 1-5, `-1`),
a fraction (`score: 4/5`), or several different scores in one reply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

# `score` as a key (optionally quoted), `:` or `=`, then a number (optionally quoted). The number must not run on
# into a fraction (`4/5`) or another digit; a sentence-ending period (`score: 4.`) is fine.
_SCORE_FIELD = re.compile(
    r"""(?<![\w])["']?score["']?\s*[:=]\s*["']?(?P<value>[-+]?\d+(?:\.\d+)?)(?!\d)(?!\s*/)(?!\.\d)""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedScore:
    """A score on the scale, or None with the reason it is a judge failure."""

    score: float | None
    failure: str | None = None


def parse_score(reply: str | None, scale: Sequence[float]) -> ParsedScore:
    """The score in a judge's reply, checked against the rubric's scale."""
    if reply is None or not str(reply).strip():
        return ParsedScore(None, "empty reply")
    values = [float(m.group("value")) for m in _SCORE_FIELD.finditer(str(reply))]
    if not values:
        return ParsedScore(None, "no score field")
    distinct = sorted(set(values))
    if len(distinct) > 1:
        return ParsedScore(None, f"several different scores: {', '.join(f'{v:g}' for v in distinct)}")
    value = distinct[0]
    for allowed in scale:
        if math.isclose(value, allowed, abs_tol=1e-9):
            return ParsedScore(float(allowed))
    return ParsedScore(None, f"score {value:g} is not on the scale {', '.join(f'{s:g}' for s in scale)}")
