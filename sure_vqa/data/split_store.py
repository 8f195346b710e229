"""Split files on disk, and what each was built from (docs/data.md#split-files).

Beside `split_files/{name}.json`, a fingerprint (`split_files/.cache/{name}.fingerprint.json`) records the rules'
version, the arguments, the raw files' sizes, mtimes and sha256 and the output file's own; a split file is reused
only when all of those still hold. A file that SURE-VQA did not write (or that was edited) is kept in
`split_files/.backup/` before it is replaced, so nothing is lost. The shift-field summary (`.cache/
shift_fields.json`) is cached the same way.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.atomic_io import file_sha256, write_bytes_atomic, write_json_atomic
from sure_vqa.data.rawfiles import json_rows_text
from sure_vqa.data.records import QARecord


def file_state(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def read_record(path: Path) -> dict[str, Any] | None:
    """A fingerprint or cache file, or None if it is missing or unreadable (it is then rebuilt)."""
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def input_hashes(inputs: Sequence[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(entry["file"], entry.get("sha256")) for entry in inputs]




class SplitFileStore:
    """One dataset's split files and their fingerprints. `version` is the split rules' version and `inputs` the
    raw files' states (sure_vqa.data.splits.DatasetSplits.inputs); `unchanged(recorded)` says whether a
    fingerprint's raw files and version still hold."""

    def __init__(self, dataset_root: Path, dataset: str, version: int, inputs: Callable[[], list[dict[str, Any]]],
                 unchanged: Callable[[dict[str, Any] | None], bool]) -> None:
        self.dataset_root, self.dataset, self.version = dataset_root, dataset, version
        self._inputs, self._unchanged = inputs, unchanged

    def cached(self, name: str, arguments: dict[str, Any]) -> list[QARecord] | None:
        """The split's records when its file was written here with these arguments from the raw files as they
        are now; None when it must be built. Only-mtime changes are written into the fingerprint (no re-hashing
        next time)."""
        path = naming.split_file(self.dataset_root, self.dataset, name)
        fingerprint_path = naming.split_fingerprint_file(self.dataset_root, self.dataset, name)
        recorded = read_record(fingerprint_path)
        if not (self.is_ours(path, recorded) and recorded.get("arguments") == arguments and self._unchanged(recorded)):
            return None
        if recorded["inputs"] != self._inputs() or recorded["output"]["mtime_ns"] != file_state(path)["mtime_ns"]:
            write_json_atomic(fingerprint_path, {**recorded, "inputs": self._inputs(),
                                                 "output": {**file_state(path), "sha256": file_sha256(path)}})
        with path.open(encoding="utf-8") as handle:
            return [QARecord.from_json(row) for row in json.load(handle)]

    def write(self, name: str, records: Sequence[QARecord], arguments: dict[str, Any]) -> None:
        """The split file and then its fingerprint, each atomically; a file not written here is kept first."""
        path = naming.split_file(self.dataset_root, self.dataset, name)
        fingerprint_path = naming.split_fingerprint_file(self.dataset_root, self.dataset, name)
        if path.exists() and not self.is_ours(path, read_record(fingerprint_path)):
            self._back_up(path, name)
        content = json_rows_text([record.to_json() for record in records]).encode("utf-8")
        write_bytes_atomic(path, content)
        write_json_atomic(fingerprint_path, {
            "version": self.version, "arguments": arguments, "inputs": self._inputs(),
            "output": {**file_state(path), "sha256": hashlib.sha256(content).hexdigest()},
        })

    @staticmethod
    def is_ours(path: Path, recorded: dict[str, Any] | None) -> bool:
        """The file is the one the fingerprint recorded (same size, and same mtime or content)."""
        if not path.is_file() or recorded is None:
            return False
        output = recorded.get("output") or {}
        state = file_state(path)
        if output.get("size") != state["size"]:
            return False
        return output.get("mtime_ns") == state["mtime_ns"] or output.get("sha256") == file_sha256(path)

    def _back_up(self, path: Path, name: str) -> None:
        backup = naming.split_backup_file(self.dataset_root, self.dataset, name, file_sha256(path)[:12])
        if not backup.exists():
            write_bytes_atomic(backup, path.read_bytes())
        print(f"note: {path} was not written by SURE-VQA or was edited; kept a copy at {backup}", file=sys.stderr)
