"""Generation per model family, batched against one at a time, side by side in one run.

    python bench/bench_families.py                                   # the tiny model of every family
    python bench/bench_families.py --models /path/to/medgemma-4b-it /path/to/Qwen2.5-VL-7B-Instruct \
        --device cuda --dtype bfloat16                               # published checkpoints on a GPU

For each model: samples/s at each batch size (1 and 8 by default), the speed-up over batch size 1, whether
every batch size gave exactly the answers of batch size 1, and the range of prompt lengths in tokens (image
tokens included: the dynamic-resolution families give images of other sizes other numbers of tokens, so a
batch pads more). The questions and images are the demo dataset's test questions, prepared as the inference
stage prepares them for the family (padded to a square only for LLaVA) before timing. On the tiny models the
figures measure the code path (processor, padding, `generate`), not what a 4B or 7B model costs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench_inference import measure  # the same timing loop as the LLaVA benchmark (bench/ is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help="model folders (default: every family's tiny model)")
    parser.add_argument("--questions", type=int, default=48, help="how many demo test questions (default 48)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
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
    from sure_vqa.models import families
    from sure_vqa.models.loading import load_for_inference
    from sure_vqa.models.prompting import prompt_text
    from sure_vqa.models.tiny import FAMILIES, build_tiny

    with tempfile.TemporaryDirectory(prefix="bench_families-") as tmp:
        workdir = Path(tmp)
        dataset_root = build_demo(workdir / "datasets" / "demo").parent
        records = split_records(dataset_root, "demo", "test", "all")[: args.questions]
        folders = ([Path(m) for m in args.models] if args.models
                   else [build_tiny(f, workdir / f"tiny-{f}") for f in FAMILIES])
        print(f"{len(records)} demo test questions, max_new_tokens={args.max_new_tokens}, greedy, {args.dtype} on "
              f"{args.device} ({torch.get_num_threads()} CPU threads)")
        print(f"{'model':<22} {'family':<16} {'params':>7} {'tokens':>9} {'batch':>5} {'samples/s':>10} {'vs 1':>6} "
              f"{'same as 1':>10}")
        for folder in folders:
            family = families.for_folder(folder)
            model, processor = load_for_inference(folder, None, dtype=args.dtype)
            generator = HFGenerator(model.to(args.device), processor,
                                    GenerationSettings(max_new_tokens=args.max_new_tokens), device=args.device)
            fill = processor_fill(processor.image_processor)
            images = [load_image(record_image_path(dataset_root, "demo", r), pad_to_square=family.pad_to_square,
                                 fill=fill) for r in records]
            prompts = [prompt_text(processor, r.question, r.answer_type, r.categories, with_image=True)
                       for r in records]
            lengths = generator.prompt_lengths(prompts, images)
            generator.generate(prompts[:2], images[:2])  # warm-up (allocations, lazy imports)
            parameters = sum(p.numel() for p in model.parameters()) / 1e6
            for batch_size, _, rate, speedup, same in measure(generator, prompts, images, args.batch_sizes,
                                                               args.device):
                print(f"{folder.name[:22]:<22} {family.name:<16} {parameters:>6.2f}M "
                      f"{min(lengths):>4}-{max(lengths):<4} {batch_size:>5} {rate:>10.2f} {speedup:>5.2f}x "
                      f"{f'{same}/{len(records)}':>10}")

if __name__ == "__main__":
    main()
