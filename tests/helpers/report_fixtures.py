"""Builders of experiment trees for the report tests: real folders with test_results.json and metrics files in
the layout the evaluation writes (element 0 the averages, then one row per question)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from sure_vqa import naming
from sure_vqa.images import corruptions

OPEN_TRADITIONAL = ("exact_match_score", "f1_score", "precision", "recall", "bleu_score_1", "bleu_score_2",
                    "bleu_score_3")
JUDGE = "gemma"
JUDGE_IDENTITY = "hf:gemma-2-9b-it"


def spread(mean: float, n: int = 4, delta: float = 0.1) -> list[float]:
    """n per-question scores whose mean is `mean`: mean+δ, mean−δ, then mean repeated."""
    values = [mean + delta, mean - delta] + [mean] * (n - 2)
    return [round(v, 10) for v in values]


def _write(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1), encoding="utf-8")


def write_run(eval_dir: Path, open_scores: Sequence[float] | None = None,
              closed_scores: Sequence[float | None] | None = None,
              judge_open: Sequence[float | str] | None = None, judge_closed: Sequence[float | str] | None = None,
              skip: Sequence[str] = ()) -> Path:
    """One eval folder. `open_scores` are per-question values used for every traditional open metric;
    `closed_scores` are per-question accuracies (None = undefined); judge scores may be strings (failures)."""
    open_scores = list(open_scores if open_scores is not None else spread(0.5))
    closed_scores = list(closed_scores if closed_scores is not None else [1.0, 0.0, 1.0, 1.0])
    open_ids = [f"o{i}" for i in range(len(open_scores))]
    closed_ids = [f"c{i}" for i in range(len(closed_scores))]
    results = [{"qid": q, "question": f"question {q}?", "gt": "liver", "pred": "liver", "answer_type": "OPEN",
                "img_name": f"img{q}.png"} for q in open_ids]
    results += [{"qid": q, "question": f"Is there {q}?", "gt": "yes", "pred": "yes", "answer_type": "CLOSED",
                 "img_name": f"img{q}.png"} for q in closed_ids]
    files = {naming.TEST_RESULTS_FILE: results}
    open_rows = [{**r, **{m: s for m in OPEN_TRADITIONAL}} for r, s in zip(results, open_scores, strict=False)]
    files[naming.OPEN_METRICS_FILE] = [
        {**{f"avg_{m}": sum(open_scores) / len(open_scores) for m in OPEN_TRADITIONAL}, "n_rows": len(open_rows)},
        *open_rows]
    closed_rows = [{**r, "accuracy": s} for r, s in zip(results[len(open_ids):], closed_scores, strict=True)]
    defined = [s for s in closed_scores if s is not None]
    files[naming.CLOSED_METRICS_FILE] = [
        {"avg_accuracy": sum(defined) / len(defined) if defined else None, "n_rows": len(closed_rows),
         "n_scored": len(defined), "n_undefined": len(closed_rows) - len(defined)}, *closed_rows]
    open_file, closed_file = naming.judge_metrics_files(JUDGE)
    for name, scores, ids, first in ((open_file, judge_open, open_ids, 0),
                                     (closed_file, judge_closed, closed_ids, len(open_ids))):
        if scores is None:
            scores = [4.0] * len(ids) if name == open_file else [1.0] * len(ids)
        numeric = [s for s in scores if not isinstance(s, str)]
        prompt = "open.v1" if name == open_file else ["closed.v1", "two_option.v1"]
        # As sure_vqa.evaluate.run writes them: a failure has score null, the reply and the reason kept.
        rows = [{**results[first + i], "rubric": "open" if name == open_file else "closed", "score":
                 None if isinstance(s, str) else s, "shortcut": False, "judge_reply": str(s),
                 "failure": "no score in the reply" if isinstance(s, str) else None} for i, s in enumerate(scores)]
        files[name] = [{"avg_score": sum(numeric) / len(numeric) if numeric else None, "n_rows": len(scores),
                        "n_scored": len(numeric), "n_failures": len(scores) - len(numeric), "n_shortcut": 0,
                        "judge": JUDGE, "judge_identity": JUDGE_IDENTITY, "prompt_version": prompt}, *rows]
    for name, payload in files.items():
        if name not in skip:
            _write(eval_dir / name, payload)
    return eval_dir


def finetuned_dir(root: Path, dataset: str, data_shift: str, ood_value: object, model_type: str, seed: int,
                  train_no_image: bool = False, tags: tuple[str, ...] | None = None) -> Path:
    """The folder name of these settings; the folder tags default to the study's (LoRA rank 16)."""
    lr = {"lora": 3e-4, "ia3": 3e-2, "prompt": 3e-2, "full": 2e-5}[model_type]
    if tags is None:
        tags = ("rank16",) if model_type == "lora" else ("ntok80",) if model_type == "prompt" else ()
    train_split = naming.split_name(dataset, "train", "iid", data_shift, ood_value, no_image=train_no_image)
    return naming.experiment_dir(root, naming.experiment_name(train_split, naming.finetune_tag(model_type, lr, seed,
                                                                                              tags)))


def run_dir(model_dir: Path, dataset: str, data_shift: str, ood_value: object, split: str, no_image: bool = False,
            corruption: tuple[Mapping[str, float], Mapping[str, str]] | None = None,
            image_control: str | None = None) -> Path:
    test_split = naming.split_name(dataset, "test", split, data_shift, ood_value)
    return naming.eval_dir(model_dir, naming.eval_run_name(test_split, no_image, corruption, image_control))


def uniform_corruption(strength: str, p: float = 0.5) -> tuple[dict[str, float], dict[str, str]]:
    return corruptions.uniform_settings(strength, p)


# --- one shift with every kind of run (tests/test_report*.py compute its numbers by hand) ---

D, F, V = "SLAKE", "modality", "X-Ray"
SWAP = ["CT", "MRI"]
SEEDS = (123, 124, 125)
LORA_IID, LORA_OOD = (0.8, 0.6, 0.7), (0.4, 0.45, 0.28)  # open-question scores per seed


def build_tree(root):
    """LoRA over three seeds with every baseline; IA3 with one seed and no runs without images."""
    for seed, iid, ood in zip(SEEDS, LORA_IID, LORA_OOD, strict=True):
        lora = finetuned_dir(root, D, F, V, "lora", seed)
        # iid: one judge failure per seed; ood: one undefined closed question in seed 123 only
        write_run(run_dir(lora, D, F, V, "iid"), spread(iid), judge_open=[5, 4, "I cannot judge", 3])
        write_run(run_dir(lora, D, F, V, "ood"), spread(ood),
                  closed_scores=[1, None, 0, 0] if seed == 123 else [1, 1, 0, 0])
        write_run(run_dir(lora, D, F, V, "iid", no_image=True), spread(iid - 0.2))
        write_run(run_dir(lora, D, F, V, "ood", no_image=True), spread(ood - 0.1))
        for strength, drop in (("low", 0.05), ("high", 0.2)):
            corruption = uniform_corruption(strength)
            write_run(run_dir(lora, D, F, V, "iid", corruption=corruption), spread(iid - drop))
            write_run(run_dir(lora, D, F, V, "ood", corruption=corruption), spread(ood - drop))
        no_image_model = finetuned_dir(root, D, F, V, "lora", seed, train_no_image=True)
        for split in ("iid", "ood"):
            for no_image in (False, True):
                write_run(run_dir(no_image_model, D, F, V, split, no_image=no_image), spread(0.3))
    ia3 = finetuned_dir(root, D, F, V, "ia3", 123)
    write_run(run_dir(ia3, D, F, V, "iid"), spread(0.5))
    write_run(run_dir(ia3, D, F, V, "ood"), spread(0.35), skip=[naming.judge_metrics_files("gemma")[1]])
    pretrained = naming.pretrained_dir(root, D)
    write_run(run_dir(pretrained, D, F, V, "iid"), spread(0.2))
    write_run(run_dir(pretrained, D, F, V, "ood"), spread(0.15))
    most_frequent = naming.most_frequent_dir(root, naming.split_name(D, "train", "iid", F, V))
    write_run(run_dir(most_frequent, D, F, V, "iid"), spread(0.25))  # its ood run is missing
    swapped = finetuned_dir(root, D, F, SWAP, "lora", 123)
    write_run(run_dir(swapped, D, F, SWAP, "iid"), spread(0.65))  # on X-Ray's ood data (CT/MRI are iid here)
    write_run(run_dir(swapped, D, F, SWAP, "ood"), spread(0.55))  # on X-Ray's iid data
    # Not part of any comparison: listed as not used.
    write_run(naming.eval_dir(pretrained, naming.split_name(D, "test", "all")), spread(0.2))
    write_run(naming.eval_dir(root / "llava-not-a-run-name", "SLAKE_test_iid_modality_X-Ray"), spread(0.1))
