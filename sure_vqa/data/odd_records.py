"""What a reader left out of a dataset, and why (docs/data.md#your-own-dataset-datasetyaml): odd rows never abort
a dataset; each kind is counted, reported once with up to five example ids, and shown in the split summary."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sure_vqa.data.records import QARecord

log = logging.getLogger(__name__)
EXAMPLES = 5  # example ids per kind in the warning


@dataclass
class OddRecords:
    """Rows left out while reading, counted by kind, with the first few ids of each."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, qid: str) -> None:
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES:
            shown.append(qid)

    def lines(self, dataset: str) -> list[str]:
        return [f"{dataset}: {n} {'row' if n == 1 else 'rows'} left out ({kind}), e.g. {', '.join(self.examples[kind])}"
                for kind, n in sorted(self.counts.items())]


class ReadRecords(list):
    """A reader's records, with what it left out (`odd`) and what it noted (`warnings`): the split summary
    reports both. Logged once, when the raw files are read."""

    def __init__(self, records: Iterable[QARecord], odd: OddRecords, warnings: list[str], dataset: str) -> None:
        super().__init__(records)
        self.odd, self.warnings = odd, warnings
        for line in [*odd.lines(dataset), *warnings]:
            log.warning(line)
