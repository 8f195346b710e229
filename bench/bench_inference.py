"""Batched against one-at-a-time generation, on the same model and questions, side by side in one run.

    python bench/bench_inference.py                       # the demo VLM (SmolLM2-135M + random CLIP tower)
    python bench/bench_inference.py --model tiny          # the tiny random LLaVA of the tests
    python bench/bench_inference.py --model /path/to/llava-med-v1.5-hf --device cuda --dtype bfloat16

Prints samples/s for each batch size (1, 8 and 16 by default), the speed-up over batch size 1, and whether
every batch size gave exactly the answers of batch size 1. The questions and images are the demo dataset's
test questions; images are loaded (and padded to a square) before timing, so the figures are generation
alone: the prompt, the processor and `generate`, as `sure-vqa infer` runs them.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def model_folder(name: str, workdir: Path) -> Path:
    if name == "tiny":
        from sure_vqa.models.tiny import build_tiny_llava

        return build_tiny_llava(workdir / "tiny-llava")
    if name == "demo":
        from sure_vqa.demo.model import build_demo_model

        return build_demo_model(workdir / "demo-vlm")
    return Path(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo", help="demo | tiny | a transformers LLaVA folder")
    parser.add_argument("--questions", type=int, default=48, help="how many demo test questions (default 48)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from sure_vqa.data.splits import record_image_path, split_records
    from sure_vqa.demo.dataset import build_demo
    from sure_vqa.images.loading import load_image, processor_fill
    from sure_vqa.infer.generation import GenerationSettings
    from sure_vqa.infer.generation.backends.hf import HFGenerator
    from sure_vqa.models.loading import load_for_inference
    from sure_vqa.models.prompting import prompt_text

    with tempfile.TemporaryDirectory(prefix="bench_inference-") as tmp:
        workdir = Path(tmp)
        dataset_root = build_demo(workdir / "datasets" / "demo").parent
        records = split_records(dataset_root, "demo", "test", "all")[: args.questions]
        model, processor = load_for_inference(model_folder(args.model, workdir), None, dtype=args.dtype)
        generator = HFGenerator(model.to(args.device), processor,
                                GenerationSettings(max_new_tokens=args.max_new_tokens), device=args.device)
        fill = processor_fill(processor.image_processor)
        images = [load_image(record_image_path(dataset_root, "demo", r), pad_to_square=True, fill=fill)
                  for r in records]
        prompts = [prompt_text(processor, r.question, r.answer_type, r.categories, with_image=True) for r in records]
        generator.generate(prompts[:2], images[:2])  # warm-up (allocations, lazy imports)

        threads = torch.get_num_threads()
        print(f"model {args.model}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
              f"{args.dtype} on {args.device} ({threads} CPU threads); {len(records)} demo test questions, "
              f"max_new_tokens={args.max_new_tokens}, greedy")
        print(f"{'batch size':>10} {'seconds':>9} {'samples/s':>10} {'vs 1':>6} {'same answers as 1':>18}")
        for batch_size, seconds, rate, speedup, same in measure(generator, prompts, images, args.batch_sizes,
                                                                 args.device):
            print(f"{batch_size:>10} {seconds:>9.2f} {rate:>10.2f} {speedup:>5.2f}x "
                  f"{f'{same}/{len(records)}':>18}")


def measure(generator, prompts: list[str], images: list, batch_sizes: list[int],
            device: str) -> list[tuple[int, float, float, float, int]]:
    """(batch size, seconds, samples/s, speed-up over the first batch size, answers equal to its answers) for
    each batch size, all on the same prompts and images (bench_families.py measures each family with it)."""
    import torch

    rows = []
    reference: list[str] | None = None
    reference_rate = 1.0
    for batch_size in batch_sizes:
        started = time.perf_counter()
        answers: list[str] = []
        for start in range(0, len(prompts), batch_size):
            answers += generator.generate(prompts[start:start + batch_size], images[start:start + batch_size])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        rate = len(prompts) / seconds
        if reference is None:
            reference, reference_rate = answers, rate
        same = sum(a == b for a, b in zip(answers, reference, strict=True))
        rows.append((batch_size, seconds, rate, rate / reference_rate, same))
    return rows

if __name__ == "__main__":
    main()
