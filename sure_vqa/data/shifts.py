"""Shift rules (docs/method.md#shifts-and-splits): which records are iid, which are ood, and which belong to neither.

A shift is `(data_shift, ood_value)`: a record field and the value(s) that make a record ood. Most shifts are
literal (`modality=X-Ray`, `image_organ=[LEG, HAND]`); a dataset may also name groups that stand for a rule
(MIMIC `age=young`: iid is age >= 60, ood is age < 40, 40-59 dropped) and may remove some records from every
split under a shift (MIMIC drops the gender questions under the gender shift). Records whose shift field is
missing (None) are in neither side: nothing is known about them.

This module only decides; splits.py reads the datasets and writes the split files.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sure_vqa.config import ConfigError
from sure_vqa.data.records import QARecord

IID = "iid"
OOD = "ood"
# answer_type is an attribute of every record rather than an entry of `fields`, yet a valid shift (SLAKE).
RECORD_ATTRIBUTE_FIELDS = ("answer_type",)

# field -> [(value, {source: count}), ...]; values keep their JSON type (MIMIC ages are ints).
FieldSummary = dict[str, list[tuple[Any, dict[str, int]]]]


@dataclass(frozen=True)
class ShiftGroup:
    """An ood_value that names a rule over a field's values instead of a literal value."""

    name: str
    iid: Callable[[Any], bool]
    ood: Callable[[Any], bool]
    description: str  # shown by `list` and in error messages, e.g. "iid: age >= 60, ood: age < 40"


@dataclass(frozen=True)
class Shift:
    """A validated shift: `side(record)` says iid, ood or None (in neither)."""

    data_shift: str
    ood_value: Any  # as the user gave it: it names the split files
    ood_values: frozenset[str] = frozenset()  # the literal values, compared as strings
    group: ShiftGroup | None = None
    image_level: bool = False  # fixed per image: the train file's ood records join the ood test split
    excluded: Callable[[QARecord], bool] | None = None  # removed from every split under this shift

    def side_of_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if self.group is not None:
            if self.group.ood(value):
                return OOD
            return IID if self.group.iid(value) else None
        return OOD if value_key(value) in self.ood_values else IID

    def side(self, record: QARecord) -> str | None:
        if self.excluded is not None and self.excluded(record):
            return None
        return self.side_of_value(field_value(record, self.data_shift))


def value_key(value: Any) -> str:
    """Values are compared as text, so that `ood_value=65` matches an age of 65 and "65" alike."""
    return str(value)


def field_value(record: QARecord, field: str) -> Any:
    if field in RECORD_ATTRIBUTE_FIELDS:
        return getattr(record, field)
    return record.fields.get(field)


def summarise(records: Iterable[QARecord]) -> FieldSummary:
    """Every shift field with each of its values and how many records of each source file have it."""
    counts: dict[str, dict[str, tuple[Any, dict[str, int]]]] = defaultdict(dict)
    for record in records:
        for field in dict.fromkeys((*RECORD_ATTRIBUTE_FIELDS, *record.fields)):
            value = field_value(record, field)
            key = "\0none" if value is None else value_key(value)
            _, per_source = counts[field].setdefault(key, (value, defaultdict(int)))
            per_source[record.source] += 1
    return {
        field: sorted(((v, dict(s)) for v, s in values.values()), key=lambda item: _sort_key(item[0]))
        for field, values in sorted(counts.items())
    }


def summarise_images(records: Iterable[QARecord]) -> dict[str, dict[str, dict[str, int]]]:
    """field -> value (as text) -> source -> how many distinct images: a shift needs images on both sides, not
    only questions (several questions share an image)."""
    images: dict[str, dict[str, dict[str, set[str]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(set)))
    for record in records:
        for field in dict.fromkeys((*RECORD_ATTRIBUTE_FIELDS, *record.fields)):
            value = field_value(record, field)
            images[field]["\0none" if value is None else value_key(value)][record.source].add(record.image)
    return {field: {value: {source: len(names) for source, names in sources.items()}
                    for value, sources in values.items()} for field, values in images.items()}


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (2, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, value_key(value))


def as_value_list(ood_value: Any) -> list[Any]:
    """A scalar or a list (also OmegaConf's ListConfig) as a list."""
    if isinstance(ood_value, str | int | float | bool):
        return [ood_value]
    return list(ood_value)


def _describe_values(values: Sequence[tuple[Any, dict[str, int]]], limit: int = 40) -> str:
    shown = [f"{v} ({sum(s.values())})" for v, s in values if v is not None]
    more = f", ... ({len(shown) - limit} more)" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def resolve_shift(
    dataset: str,
    summary: FieldSummary,
    data_shift: Any,
    ood_value: Any,
    groups: Mapping[str, Mapping[str, ShiftGroup]],
    exclusions: Mapping[str, Callable[[QARecord], bool]],
    image_level_fields: Iterable[str],
) -> Shift:
    """Checks a shift against a dataset's records (docs/method.md#shifts-and-splits) and returns it ready to apply.

    Raises ConfigError naming the setting and what is valid: a data_shift the records lack, an ood_value that
    matches no record, or one that leaves no iid record.
    """
    if data_shift in (None, ""):
        raise ConfigError(
            "data_shift is not set; split=iid/ood needs data_shift and ood_value "
            f"(valid fields of {dataset}: {', '.join(summary)})"
        )
    if ood_value is None or (
        not isinstance(ood_value, str | int | float) and len(as_value_list(ood_value)) == 0
    ):
        raise ConfigError(
            f"ood_value is not set; give a value of {dataset}'s {data_shift} (or a list of them)"
        )
    if data_shift not in summary:
        raise ConfigError(
            f"data_shift={data_shift!r} is not a field of the {dataset} records; valid fields: {', '.join(summary)}"
        )
    values = summary[data_shift]
    field_groups = groups.get(data_shift, {})
    shift_kwargs: dict[str, Any] = {
        "data_shift": data_shift,
        "ood_value": ood_value,
        "image_level": data_shift in set(image_level_fields),
        "excluded": exclusions.get(data_shift),
    }
    if isinstance(ood_value, str) and ood_value in field_groups:
        shift = Shift(group=field_groups[ood_value], **shift_kwargs)
    else:
        matched: set[str] = set()
        keys = {value_key(v) for v, _ in values if v is not None}
        for wanted in as_value_list(ood_value):
            exact = {value_key(wanted)} & keys
            # "OrganSystem" names the same split as "Organ System" (split names drop spaces), so both select it.
            spaceless = {k for k in keys if k.replace(" ", "") == value_key(wanted).replace(" ", "")}
            found = exact or spaceless
            if not found:
                group_text = "".join(f"; group {g.name}: {g.description}" for g in field_groups.values())
                raise ConfigError(
                    f"ood_value={wanted!r} matches no {dataset} record's {data_shift}; valid values: "
                    f"{_describe_values(values)}{group_text}"
                )
            matched |= found
        shift = Shift(ood_values=frozenset(matched), **shift_kwargs)

    sides: dict[str | None, int] = defaultdict(int)
    for value, per_source in values:
        sides[shift.side_of_value(value)] += sum(per_source.values())
    if sides[OOD] == 0:  # only a group can select nothing: a literal value was found among the records
        rule = f" (group {shift.group.name}: {shift.group.description})" if shift.group else ""
        raise ConfigError(
            f"ood_value={ood_value!r}{rule} matches no {dataset} record's {data_shift}; "
            f"valid values: {_describe_values(values)}"
        )
    if sides[IID] == 0:
        raise ConfigError(
            f"ood_value={ood_value!r} makes every {dataset} record ood (data_shift={data_shift}); "
            f"no iid record is left to train on; valid values: {_describe_values(values)}"
        )
    return shift


def count_sides(summary: FieldSummary, shift: Shift) -> dict[str, dict[str, int]]:
    """{source: {iid: n, ood: n, dropped: n}} by field value alone (before per-question exclusions)."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: {IID: 0, OOD: 0, "dropped": 0})
    for value, per_source in summary[shift.data_shift]:
        side = shift.side_of_value(value) or "dropped"
        for source, n in per_source.items():
            table[source][side] += n
    return dict(table)
