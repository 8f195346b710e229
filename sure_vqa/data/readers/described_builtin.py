"""The datasets SURE-VQA knows by a description file (sure_vqa/data/descriptions/), in each layout they are
published in: VQA-RAD and PathVQA as released and as the Hugging Face hub publishes them. Which layout a folder
holds is seen from its files; a dataset.yaml in the folder takes precedence over both (docs/data.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sure_vqa.config import DataError
from sure_vqa.data.described import part_paths
from sure_vqa.data.description import DatasetDescription, read_description
from sure_vqa.data.registry import DatasetReader, described_reader, register

DESCRIPTIONS = Path(__file__).resolve().parents[1] / "descriptions"


@dataclass(frozen=True)
class Layouts:
    """A dataset's published layouts, in the order they are tried: (name, description file)."""

    dataset: str
    layouts: Sequence[tuple[str, str]]

    def description_for(self, dataset_dir: Path) -> DatasetDescription:
        tried = []
        for layout, filename in self.layouts:
            description = read_description(DESCRIPTIONS / filename)
            if all(part_paths(dataset_dir, pattern) and all(p.exists() for p in part_paths(dataset_dir, pattern))
                   for pattern in description.part_files().values()):
                return description
            tried.append(f"{layout} ({', '.join(dict.fromkeys(description.part_files().values()))})")
        raise DataError(f"{dataset_dir} holds none of {self.dataset}'s published layouts: {'; '.join(tried)}; "
                        f"put the files there as published, or describe them in {dataset_dir / 'dataset.yaml'} "
                        "(docs/data.md#dataset-yaml)")

    def reader(self, dataset_dir: Path) -> DatasetReader:
        return described_reader(self.dataset, dataset_dir, self.description_for(dataset_dir))


def _register(layouts: Layouts, description: str) -> None:
    register(DatasetReader(name=layouts.dataset, read=lambda dataset_dir: layouts.reader(dataset_dir).read(dataset_dir),
                           image_level_fields=frozenset(), description=description, for_folder=layouts.reader))


_register(Layouts("VQA-RAD", [("as released", "VQA-RAD.release.yaml"), ("from the hub", "VQA-RAD.hub.yaml")]),
          "VQA-RAD (radiology): as released (JSON, organ and question type) or from the hub (parquet)")
_register(Layouts("PathVQA", [("as released", "PathVQA.release.yaml"), ("from the hub", "PathVQA.hub.yaml")]),
          "PathVQA (pathology): as released (pickled lists) or from the hub (parquet); yes/no questions closed")
