"""The inference stage: a fine-tuned (or the zero-shot) VLM answers a test split; writes eval/<run>/test_results.json.

    sure-vqa infer [key=value ...]                                 # a fine-tuned model (config/inference/)
    sure-vqa infer model_type=pretrained   # the zero-shot model
    accelerate launch --num_processes N inference.py ...                # data-parallel: a shard per process

Every setting is checked before a model is loaded. Each prediction is appended to a log in the eval folder as
it is made (sure_vqa.infer.generation.prediction_log), so a killed run restarted with the same settings continues
where it stopped; a finished run (test_results.json present) is skipped. Rows of test_results.json keep the
original SURE-VQA keys (qid, question, gt, pred, answer_type, img_name, docs/method.md#experiment-folders) plus `answer_categories`,
and, where they apply, `corruption` (the drawn parameters) and `control_image` (the image shown instead).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sure_vqa import eval_folder, graceful_stop, naming, system_errors
from sure_vqa.atomic_io import write_json_atomic
from sure_vqa.config import ConfigError, DataError
from sure_vqa.data.records import QARecord, records_digest
from sure_vqa.infer.settings import InferenceRun, resolve_run
from sure_vqa.run_lock import run_lock

log = logging.getLogger(__name__)

# Bump when the meaning of a log row changes, so that old logs are set aside instead of mixed in.
LOG_FORMAT_VERSION = 1
# Recorded with a run, but not part of its fingerprint (see run_fingerprint).
LOCATION_SETTINGS = ("base_model_path", "model_dir")
LOCK_STAGE = "inference"
MAX_LISTED_PROBLEMS = 100  # images named in one error; the count says how many more


# --- fingerprint and rows ------------------------------------------------------------------------------------------


def run_settings(run: InferenceRun, records: Sequence[QARecord], resolved_dtype: str) -> dict[str, Any]:
    """What decides the answers, in readable form (written to the log header and inference_info.json)."""
    from sure_vqa.infer.generation.inputs import BLANK_VALUE
    from sure_vqa.models import methods
    from sure_vqa.models.prompting import YES_NO_SUFFIX

    revision = 1 if run.pretrained else methods.get(run.model_type).generation_revision
    return {
        "log_format": LOG_FORMAT_VERSION,
        **({"generation_revision": revision} if revision != 1 else {}),  # absent at 1: older fingerprints hold
        "base_model_path": str(run.base_model_path),
        "model_dir": None if run.pretrained else str(run.model_dir),
        "model_type": run.model_type,
        "test_split": run.test_split_name,
        "split_digest": records_digest(records),
        "num_questions": len(records),
        "prompt_suffix": YES_NO_SUFFIX,
        "generation": asdict(run.generation),
        "backend": run.backend,
        "dtype": resolved_dtype,
        "with_image": not run.no_image,
        "pad_to_square": run.pad_to_square,
        "corruption": list(run.corruption.as_maps()) if run.corruption else None,
        "image_control": run.image_control,
        "blank_value": BLANK_VALUE if run.image_control == "blank" else None,
        "seed": run.seed,
    }


def run_fingerprint(run: InferenceRun, settings: Mapping[str, Any]) -> str:
    """The settings plus the files of the base model and the experiment folder (retraining changes it).

    Where the folders are is left out: a model moved or copied elsewhere answers the same.
    """
    from sure_vqa.infer.generation.prediction_log import fingerprint, folder_signature

    return fingerprint({
        "settings": {k: v for k, v in settings.items() if k not in LOCATION_SETTINGS},
        "base_model_files": folder_signature(run.base_model_path),
        "model_files": {} if run.pretrained else folder_signature(run.model_dir),
    })


def result_row(record: QARecord, pred: str, extras: Mapping[str, Any]) -> dict[str, Any]:
    """A test_results.json row: the original keys first, then what this project adds."""
    return {
        "qid": record.qid,
        "question": record.question,
        "gt": record.answer,
        "pred": pred,
        "answer_type": record.answer_type,
        "img_name": record.img_name,
        "answer_categories": record.categories,
        **extras,
    }


# --- the stage ---------------------------------------------------------------------------------------------------


def _skip_finished(run: InferenceRun, settings: Mapping[str, Any], expected_fingerprint: str) -> None:
    """A finished run is not redone; one made by another model or other settings is reported, not reused."""
    if not run.info_file.is_file():
        log.info("skipping: %s exists (written without %s, e.g. by the original SURE-VQA code); delete it to "
                 "run again", run.results_file, naming.INFERENCE_INFO_FILE)
        return
    try:
        info = json.loads(run.info_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{run.info_file} is not valid JSON ({err})") from err
    if info.get("fingerprint") == expected_fingerprint:
        log.info("skipping: %s is finished (same model and settings); delete it to run again", run.results_file)
        return
    old = info.get("settings", {})
    changed = sorted(k for k in set(old) | set(settings)
                     if k not in LOCATION_SETTINGS and old.get(k) != settings.get(k))
    reason = f"settings differ: {', '.join(changed)}" if changed else "the model's files differ (retrained?)"
    raise ConfigError(
        f"{run.results_file} was made by another model or other settings ({reason}); move that eval folder "
        "away to redo the run, or set eval_dir=PATH to write elsewhere"
    )


def _load_records(run: InferenceRun) -> list[QARecord]:
    from sure_vqa.data.splits import limit_records, split_records

    # No seed: split=sample uses the data seed (the same test questions for every training seed).
    records = limit_records(
        split_records(run.dataset_root, run.dataset, run.mod, run.split, run.data_shift, run.ood_value),
        run.max_samples,
    )
    if not records:
        raise DataError(f"split {run.test_split_name} has no questions; check data_shift and ood_value")
    repeated = eval_folder.repeated_qids(record.qid for record in records)
    if repeated:
        spellings, count = repeated[0]
        raise DataError(f"split {run.test_split_name} has question id {' / '.join(map(repr, spellings))} {count} "
                        "times; ids must be unique (ids that differ only in surrounding spaces are the same)")
    return records


def _distributed_state() -> Any:
    """accelerate's process state: one process, or one rank of `accelerate launch` / torchrun (gloo on CPU)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def run_inference(cfg: Mapping[str, Any]) -> Path:
    """Runs (or resumes, or skips) one inference run; returns the path of its test_results.json."""
    from sure_vqa.infer.generation import resolve_dtype

    run = resolve_run(cfg)
    state = _distributed_state()
    if run.backend == "vllm" and state.num_processes > 1:
        raise ConfigError("backend=vllm runs as one process (it batches and shards across GPUs itself); "
                          "start it with sure-vqa infer, not accelerate launch")
    records = _load_records(run)
    settings = run_settings(run, records, resolve_dtype(run.dtype, str(state.device)))
    expected = run_fingerprint(run, settings)
    if run.results_file.exists():
        _skip_finished(run, settings, expected)
        return run.results_file
    if not run.no_image:
        check_images(run, records)  # every missing or unreadable image, before a model loads
    with system_errors.writing_to(run.eval_dir), graceful_stop.stoppable(), \
            run_lock(run.eval_dir, LOCK_STAGE, state.process_index, wait=run.wait_for_lock):
        if run.results_file.exists():  # finished by the run this one waited for
            _skip_finished(run, settings, expected)
            return run.results_file
        _run_locked(run, records, settings, expected, state)
    return run.results_file


def check_images(run: InferenceRun, records: Sequence[QARecord]) -> None:
    """A stat and a header read per image: all the problems in one error, with their qids."""
    from sure_vqa.data.splits import record_image_path
    from sure_vqa.images.loading import image_file_problem

    problems = []
    checked: dict[Path, str | None] = {}  # an image file asked about by several questions is read once
    for record in records:
        path = record_image_path(run.dataset_root, run.dataset, record)
        if path not in checked:
            checked[path] = image_file_problem(path)
        if checked[path] is not None:
            problems.append((record.qid, path, checked[path]))
    if problems:
        shown = "; ".join(f"qid {qid}: {path} {problem}" for qid, path, problem in problems[:MAX_LISTED_PROBLEMS])
        more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        bad_files = len({path for _, path, _ in problems})
        raise DataError(f"{bad_files} of the {len(checked)} image files of {run.test_split_name} are missing or "
                        f"unreadable, asked about by {len(problems)} of its {len(records)} questions (is "
                        f"paths.dataset_root right?): {shown}{more}")


def _run_locked(run: InferenceRun, records: Sequence[QARecord], settings: Mapping[str, Any], expected: str,
                state: Any) -> None:
    from sure_vqa.infer.generation.prediction_log import completed_rows, remove_logs, set_aside_stale_logs

    if state.is_main_process:
        run.eval_dir.mkdir(parents=True, exist_ok=True)
        for old, new in set_aside_stale_logs(run.eval_dir, expected):
            log.warning("%s was written with other settings or another model; kept as %s, starting fresh",
                        old.name, new.name)
    state.wait_for_everyone()

    done = completed_rows(run.eval_dir, expected)
    mine = [i for i in range(state.process_index, len(records), state.num_processes) if records[i].qid not in done]
    if done and state.is_main_process:
        log.info("resuming %s: %d of %d questions already answered", run.run_name, len(done), len(records))
    started = time.perf_counter()
    if mine:
        _generate(run, records, mine, settings, expected, state)
    elapsed = time.perf_counter() - started
    state.wait_for_everyone()

    if state.is_main_process:
        _merge(run, records, settings, expected, elapsed, len(mine), state.num_processes)
        remove_logs(run.eval_dir, expected)
        log.info("wrote %s (%d rows)", run.results_file, len(records))
    state.wait_for_everyone()


def _generate(run: InferenceRun, records: Sequence[QARecord], indices: Sequence[int], settings: Mapping[str, Any],
              expected: str, state: Any) -> None:
    """Answers this rank's questions in batches, appending each answer to this rank's log."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from sure_vqa.data.splits import record_image_path
    from sure_vqa.images.loading import processor_fill
    from sure_vqa.infer.generation import LoadRequest, load_generator
    from sure_vqa.infer.generation.inputs import ImageSettings, QuestionInputs, as_list
    from sure_vqa.infer.generation.prediction_log import PredictionLog
    from sure_vqa.models.prompting import prompt_text
    from sure_vqa.worker_processes import DieWithParent

    generator = load_generator(run.backend, LoadRequest(
        base_model_path=str(run.base_model_path), model_dir=None if run.pretrained else str(run.model_dir),
        dtype=settings["dtype"], device=str(state.device), settings=run.generation,
    ))
    image_settings = ImageSettings(
        with_image=not run.no_image, pad_to_square=run.pad_to_square,
        fill=processor_fill(getattr(generator.processor, "image_processor", None)),
        corruption=run.corruption.as_maps() if run.corruption else None, image_control=run.image_control,
        seed=run.seed,
    )
    prompts = {i: prompt_text(generator.processor, records[i].question, records[i].answer_type, records[i].categories,
                              with_image=not run.no_image) for i in indices}
    # Longest prompts first: equal lengths share a batch (little padding) and memory peaks at the start.
    tokenizer = getattr(generator.processor, "tokenizer", generator.processor)
    lengths = tokenizer([prompts[i] for i in indices], add_special_tokens=False)["input_ids"]
    length_of = {i: len(ids) for i, ids in zip(indices, lengths, strict=True)}
    order = sorted(indices, key=lambda i: (-length_of[i], i))
    inputs = QuestionInputs(records, order, image_settings,
                            functools.partial(record_image_path, run.dataset_root, run.dataset))
    loader = DataLoader(inputs, batch_size=run.batch_size, num_workers=run.num_workers, collate_fn=as_list,
                        worker_init_fn=DieWithParent() if run.num_workers else None)
    log_path = run.eval_dir / naming.prediction_log_name(state.process_index)
    rank = f" [rank {state.process_index}/{state.num_processes}]" if state.num_processes > 1 else ""
    answered = len(records) - len(indices)  # by earlier runs (all ranks)

    def kept() -> str:
        return (f"{answered} of the {len(records)} answers of {run.run_name} are kept in {log_path}; rerun the same "
                "command to continue from there")

    graceful_stop.check(kept)  # asked to stop while the model loaded
    with PredictionLog(log_path, expected, settings) as prediction_log, tqdm(
        total=len(order), unit=" samples", desc=f"{run.run_name}{rank}", dynamic_ncols=True,
    ) as progress:
        for batch in loader:
            questions = [records[item.index] for item in batch]
            images = None if run.no_image else [item.image for item in batch]
            answers = generator.generate([prompts[item.index] for item in batch], images)
            for record, item, answer in zip(questions, batch, answers, strict=True):
                prediction_log.append(result_row(record, answer, item.extras))
            progress.update(len(batch))
            answered += len(batch)
            graceful_stop.check(kept)  # the batch in hand is in the log


def split_selection(run: InferenceRun) -> dict[str, Any]:
    """dataset, mod, split, data_shift and ood_value of the run's questions, as the split files take them."""
    ood_value = run.ood_value
    if ood_value is not None and not isinstance(ood_value, str | int | float):
        ood_value = list(ood_value)
    return {"dataset": run.dataset, "mod": run.mod, "split": run.split, "data_shift": run.data_shift,
            "ood_value": ood_value, "max_samples": run.max_samples}


def _merge(run: InferenceRun, records: Sequence[QARecord], settings: Mapping[str, Any], expected: str,
           elapsed: float, answered_here: int, world_size: int) -> None:
    """Every rank's log into test_results.json (split order) and inference_info.json, both atomically."""
    from sure_vqa.infer.generation.prediction_log import completed_rows

    done = completed_rows(run.eval_dir, expected)
    missing = [r.qid for r in records if r.qid not in done]
    if missing:
        raise DataError(f"{len(missing)} questions of {run.test_split_name} have no prediction in the logs of "
                        f"{run.eval_dir} (first: {missing[:5]}); a process stopped early: rerun to complete")
    # The info first: test_results.json is what marks the run finished, so it is written last.
    write_json_atomic(run.info_file, {
        "fingerprint": expected,
        "settings": dict(settings),
        "run_name": run.run_name,
        # which records were asked, so that later stages (the rater study) need only this folder
        "split_selection": split_selection(run),
        "num_rows": len(records),
        "world_size": world_size,
        "batch_size": run.batch_size,
        "rank0": {"answered": answered_here, "seconds": round(elapsed, 3),
                  "samples_per_s": round(answered_here / elapsed, 3) if elapsed > 0 else None},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    eval_folder.write_test_results(run.results_file, [done[r.qid] for r in records])

