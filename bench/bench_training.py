"""Training speed and peak memory of each fine-tuning method, side by side in one run.

    python bench/bench_training.py                               # the tiny LLaVA of the tests, on the CPU
    python bench/bench_training.py --model /path/to/llava-med-v1.5-hf --steps 20 --per-device-batch 4

Each method trains through the real stage (`sure_vqa.train.run.train_model`: config, dataset, collator, Trainer,
experiment folder) in a process of its own, on a synthetic colour dataset in SLAKE's format, so the figures of
one method do not inherit the memory of another. Printed per method: trainable parameters, training samples/s
(the Trainer's own measure, over the training loop only) and the peak memory of training: GPU memory allocated
on a GPU, otherwise the growth of the process's peak resident memory from the start of training.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
from pathlib import Path
from typing import Any

METHODS = ("lora", "ia3", "prompt", "full")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_method(method: str, args: dict[str, Any], results: Any) -> None:
    import torch
    from transformers import TrainerCallback

    from sure_vqa.config import compose
    from sure_vqa.train.run import train_model

    class MemoryAtStart(TrainerCallback):
        start_rss = 0

        def on_train_begin(self, *_, **__):
            MemoryAtStart.start_rss = _rss_bytes()
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()

    overrides = [
        f"paths.dataset_root={args['data_root']}", f"paths.experiment_root={args['experiments']}/{method}",
        f"paths.model_path={args['model']}", "dataset=SLAKE", "data_shift=modality", "ood_value=X-Ray",
        f"model_type={method}", "finetune.prompt.num_virtual_tokens=8", f"train.max_steps={args['steps']}",
        f"train.batch_size={args['per_device_batch']}", f"train.per_device_batch_size={args['per_device_batch']}",
        "train.save_steps=100000", "train.logging_steps=100000", "train.dataloader_num_workers=0",
        f"train.gradient_checkpointing={str(args['gradient_checkpointing']).lower()}",
    ]
    cfg = compose("train/training_defaults", overrides)
    outcome = train_model(cfg, callbacks=[MemoryAtStart()])
    summary = outcome.trainer.state.log_history[-1]
    if torch.cuda.is_available():
        peak, kind = torch.cuda.max_memory_allocated(), "GPU allocated"
    else:
        peak, kind = _peak_rss_bytes() - MemoryAtStart.start_rss, "CPU peak RSS growth"
    results.put({
        "method": method,
        "trainable": sum(p.numel() for p in outcome.model.parameters() if p.requires_grad),
        "samples_per_s": summary["train_samples_per_second"],
        "peak_mib": max(peak, 0) / 2**20,
        "memory_kind": kind,
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny | a transformers LLaVA folder")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per method (default 30)")
    parser.add_argument("--per-device-batch", type=int, default=8)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="as in the study (off by default "
                        "here: on the tiny model it only costs time)")
    parsed = parser.parse_args()

    from tests.training_fixtures import write_colour_slake

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if parsed.model == "tiny":
            from sure_vqa.models.tiny import build_tiny_llava

            model = build_tiny_llava(work / "tiny-llava")
        else:
            model = Path(parsed.model)
        write_colour_slake(work / "data", n_train=max(64, parsed.per_device_batch * 4))
        args = {"data_root": work / "data", "experiments": work / "experiments", "model": model,
                "steps": parsed.steps, "per_device_batch": parsed.per_device_batch,
                "gradient_checkpointing": parsed.gradient_checkpointing}
        context = multiprocessing.get_context("spawn")
        rows = []
        for method in parsed.methods:
            results = context.Queue()
            process = context.Process(target=run_method, args=(method, args, results))
            process.start()
            rows.append(results.get())
            process.join()

    print(f"\nmodel: {parsed.model}; {parsed.steps} steps of batch {parsed.per_device_batch}; "
          f"gradient checkpointing {'on' if parsed.gradient_checkpointing else 'off'}")
    print(f"{'method':<8} {'trainable params':>17} {'samples/s':>10} {'peak MiB':>9}  memory measure")
    for row in rows:
        print(f"{row['method']:<8} {row['trainable']:>17,} {row['samples_per_s']:>10.1f} {row['peak_mib']:>9.1f}  "
              f"{row['memory_kind']}")


if __name__ == "__main__":
    main()
