"""VQA-evaluation-style answer normalisation (docs/method.md#traditional-metrics), shared by every traditional metric.

Hand-written because no maintained package ships it: the VQA evaluation code, and LLaVA-Med's copy of it that
the original SURE-VQA used, are scripts, not libraries. The rules follow docs/method.md#traditional-metrics and are decided for each
occurrence of a character:

1. lower-case;
2. each punctuation mark of `PUNCTUATION` is removed where it touches whitespace (or, for a comma, sits between
   two digits, `1,000` -> `1000`) and is replaced by a space otherwise (`x-ray` -> `x ray`);
3. a period is removed unless it sits between two digits (`3.5` stays, `liver.` -> `liver`);
4. on whitespace tokens: the number words zero..ten and "none" become digits, the articles a/an/the are
   dropped, and common contractions get their apostrophe back (`dont` -> `don't`);
5. any comma left is removed.

Two quirks of the original script are deliberately not reproduced (docs/evaluation.md): it decided "remove or
replace" once per punctuation mark for the whole text (so one `x - y` turned every hyphen of the answer into
nothing) and its period pattern only looked at the character after the period.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

PUNCTUATION = frozenset(';/[]"{}()=+\\_-><@`,?!')
ARTICLES = frozenset({"a", "an", "the"})
NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
# The VQA evaluation's contraction table (lower-case keys: the text is lower-cased before lookup).
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "id've": "i'd've", "i'dve": "i'd've", "im": "i'm",
    "ive": "i've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've",
    "mightve": "might've", "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebodyd": "somebody'd", "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've", "somebodyll": "somebody'll", "somebodys": "somebody's",
    "someoned": "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've", "somethingll": "something'll",
    "thats": "that's", "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas",
    "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't",
    "whatll": "what'll", "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll",
    "whyre": "why're", "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}  # fmt: skip

_MARKS = "".join(sorted(PUNCTUATION - {","}))
_MARK_CLASS = "[" + re.escape(_MARKS) + "]"
# Rules 2 and 3 as two substitutions, each deciding on its own input. Pass 1 turns into a space every mark that
# touches no whitespace (a comma between two digits excepted); pass 2 deletes every mark left except a period
# between digits. Pass 1 never changes whitespace or digits, so pass 2's decisions equal those on the text as
# given. A digit is what `\d` matches (Unicode decimal digits, as the VQA script's own patterns; a superscript
# "²" is not one). Written as regular expressions (no Python call per mark) because normalisation is most of the cost of
# the open metrics (bench/bench_metrics.py).
_TO_SPACE = re.compile(r"(?<!\s)(?:" + _MARK_CLASS + r"|(?<!\d),|,(?!\d))(?!\s)")
_TO_DELETE = re.compile(_MARK_CLASS + r"|,|(?<!\d)\.|\.(?!\d)")
_ANY_MARK = re.compile("[" + re.escape(_MARKS) + ",.]")
# Rule 4 in one lookup per word: number words to digits, articles to nothing, contractions restored.
_WORD_MAP = {**CONTRACTIONS, **NUMBER_WORDS, **dict.fromkeys(ARTICLES, "")}


def _strip_marks(text: str) -> str:
    """Rules 2 and 3; each decision looks at the neighbours in the text as given."""
    if not _ANY_MARK.search(text):
        return text
    return _TO_DELETE.sub("", _TO_SPACE.sub(" ", text))


def normalize_tokens(text: str) -> list[str]:
    """The normalised answer as whitespace tokens (what exact match, F1 and BLEU count)."""
    words = _WORD_MAP
    return [mapped for word in _strip_marks(str(text).lower()).split() if (mapped := words.get(word, word))]


def normalize_answer(text: str) -> str:
    """The normalised answer as one string: `"The X-Ray, two."` -> `"x ray 2"`."""
    return " ".join(normalize_tokens(text))


class Tokens(tuple):
    """A normalised answer's tokens that remember their n-gram counts (computed once per distinct answer:
    `score_open_rows` keeps one Tokens per distinct text, and token F1 and BLEU share the counts)."""

    _counts: dict[int, dict[Hashable, int]]

    def counts(self, n: int) -> dict[Hashable, int]:
        try:
            cached = self._counts
        except AttributeError:  # a tuple subclass can't have __slots__ or an __init__ that sets it
            cached = self._counts = {}
        if n not in cached:
            cached[n] = _count(self, n)
        return cached[n]


def _count(tokens: Sequence[str], n: int) -> dict[Hashable, int]:
    counts: dict[Hashable, int] = {}
    grams: Sequence[Hashable] = tokens if n == 1 else list(zip(*(tokens[i:] for i in range(n)), strict=False))
    for gram in grams:
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def ngram_counts(tokens: Sequence[str], n: int) -> dict[Hashable, int]:
    """How often each n-gram occurs in a normalised answer (unigrams as the tokens themselves); remembered by a
    `Tokens`, counted afresh for any other sequence. A plain dict count: cheaper than a Counter for answers of
    a few words (bench/bench_metrics.py)."""
    if isinstance(tokens, Tokens):
        return tokens.counts(n)
    return _count(tokens, n)
