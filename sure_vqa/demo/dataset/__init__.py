"""The demo dataset (docs/method.md#datasets): a small VQA dataset in SLAKE's raw format, built offline from the real
medical images that ship inside Python packages, so that the whole study runs on any machine.

`build_demo(out_dir)` writes `imgs/<image folder>/source.png`, `train.json`, `validate.json`, `test.json`
(SLAKE's fields) and `demo_sources.json` (where every image comes from). The SLAKE reader reads the folder as
dataset `demo` (`{DATASET_ROOT_DIR}/demo`).

Every image has facts known from its source (the DICOM header, the package's documentation, what the picture
plainly shows): modality, body region, plane, which organs it contains. Questions are generated from those
facts only, so their answers depend on the image (a model that sees it can learn them) and are never guessed.
Crops of one source image and slices of one volume count as distinct images; they may land in different
parts (train/validate/test), which is fine for a dataset whose job is to exercise the pipeline.

The build is deterministic: every choice comes from a generator seeded by a fixed string, images are resized
with a fixed filter and saved as 8-bit PNG, so the same package versions give the same bytes on every run.
"""

from sure_vqa.demo.dataset.build import DEMO_SOURCES_FILE, build_demo, summary
from sure_vqa.demo.dataset.catalogue import catalogue

__all__ = ["DEMO_SOURCES_FILE", "build_demo", "catalogue", "summary"]
