"""The bundled demo, above the stages: its dataset (real medical images that ship inside Python packages,
dataset/), its model (SmolLM2 with a CLIP tower aligned on captions of the demo's train images, model.py and
alignment.py) and the run that builds both and calls the study (run.py, `sure-vqa demo`). Nothing in the stages
imports it; the demo dataset is read by the SLAKE reader (sure_vqa/data/readers/slake.py)."""
