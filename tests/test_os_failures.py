"""A full disk is the machine's failure, not the program's: one `error:` line naming the path and the free space,
exit code 1, no traceback, every finished file intact, and the same command completes once space is back.
The disk is a real small tmpfs (as root, as CI runs); elsewhere a per-process file size limit makes the same
real writes fail (EFBIG)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sure_vqa import naming, system_errors
from tests.conftest import PROJECT_ROOT
from tests.helpers.inference_helpers import colour_inference_command, many_colour_questions

ROWS = [{"qid": str(i), "question": f"What organ is shown in view {i}?", "gt": "liver",
         "pred": f"the spleen and the liver, seen in view {i}", "answer_type": "OPEN", "img_name": f"{i}.png"}
        for i in range(300)]


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, dict]]:
    """(a folder on a 1 MB file system, extra subprocess.run arguments). As root a tmpfs is mounted there;
    otherwise the subprocess may write no file larger than 16 KB (RLIMIT_FSIZE), which fails the same writes."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                                            capture_output=True).returncode == 0:
        try:
            yield folder, {}
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    yield folder, {"preexec_fn": limit}


def _fill(folder: Path, leave_bytes: int) -> Path:
    """A filler file that leaves about `leave_bytes` free on `folder`'s file system (a no-op under the size
    limit, where every file has its own budget)."""
    filler = folder / "filler.bin"
    free = system_errors.free_bytes(folder) or 0
    if free > 4 * 2**20:  # not the small tmpfs
        return filler
    filler.write_bytes(b"\0" * max(0, free - leave_bytes))
    return filler


def test_run_eval_on_a_full_disk_says_so_in_one_line_and_completes_when_space_is_back(small_disk) -> None:
    folder, extra = small_disk
    eval_dir = folder / "eval_run"
    eval_dir.mkdir()
    results = json.dumps(ROWS).encode()
    (eval_dir / naming.TEST_RESULTS_FILE).write_bytes(results)
    filler = _fill(folder, 16 * 1024)
    command = [sys.executable, "run_eval.py", f"eval_dir={eval_dir}", "dataset=null", "paths.experiment_root=null",
               "metric_type=[traditional_metrics]", f"hydra.run.dir={folder.parent / 'hydra'}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    full = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, **extra)

    assert full.returncode == system_errors.EXIT_OS_ERROR, full.stderr[-3000:]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, full.stderr[-3000:]
    target = eval_dir / naming.OPEN_METRICS_FILE
    reason = "No space left on device" if not extra else "File too large"
    assert errors[0].startswith(f"error: cannot write {target} ({reason}")
    if not extra:
        assert " free on that file system)." in errors[0]
    assert "Nothing finished was changed" in errors[0] and "rerun the same command" in errors[0]
    # the answers are intact, and no half-written or temporary file is left
    assert (eval_dir / naming.TEST_RESULTS_FILE).read_bytes() == results
    assert sorted(p.name for p in eval_dir.iterdir()) == [naming.run_lock_name("evaluation"), naming.TEST_RESULTS_FILE]

    filler.unlink(missing_ok=True)  # space is back (under the size limit: the limit is lifted)
    again = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(json.loads(target.read_text())) == 1 + len(ROWS)


@pytest.mark.slow
def test_inference_on_a_full_disk_keeps_its_answers_and_continues_when_space_is_back(small_disk,
                                                                                    tiny_llava_dir: Path) -> None:
    folder, extra = small_disk
    data_root = many_colour_questions(folder.parent / "data", 100)  # the dataset and the model are on another disk
    experiments = folder / "experiments"
    eval_dir = experiments / "SLAKE" / "pretrained" / naming.EVAL_DIR / "SLAKE_test_iid_modality_X-Ray"
    filler = _fill(folder, 8 * 1024)
    command = [arg.replace(f"hydra.run.dir={experiments}/hydra", f"hydra.run.dir={folder.parent}/hydra")
               for arg in colour_inference_command(data_root, experiments, tiny_llava_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    full = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600, **extra)
    assert full.returncode == system_errors.EXIT_OS_ERROR, full.stderr[-3000:]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
    log_path = eval_dir / naming.prediction_log_name(0)
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot write {log_path} ("), full.stderr[-3000:]
    from sure_vqa.infer.generation.prediction_log import read_rows

    kept = len(read_rows(log_path))
    assert 0 < kept < 102 and not (eval_dir / naming.TEST_RESULTS_FILE).exists()

    filler.unlink(missing_ok=True)
    again = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming SLAKE_test_iid_modality_X-Ray: {kept} of 102 questions already answered" in (
        again.stdout + again.stderr)
    assert len(json.loads((eval_dir / naming.TEST_RESULTS_FILE).read_text())) == 102


@pytest.mark.parametrize("writer", ["torch", "safetensors", "sqlite"])
def test_the_libraries_full_disk_errors_are_recognised(writer: str, small_disk) -> None:
    """torch's zip writer (checkpoints' optimizer state), safetensors (weights) and SQLite (the judge cache) each
    report a full disk in their own exception; each is made to fail for real on the small disk."""
    folder, extra = small_disk
    if extra:
        pytest.fail("this check needs the small tmpfs (root); CI runs as root")
    _fill(folder, 8 * 1024)
    import torch

    target = folder / f"out.{writer}"

    def write() -> None:
        if writer == "torch":
            torch.save({"weights": torch.zeros(100_000)}, target)
        elif writer == "safetensors":
            from safetensors.torch import save_file

            save_file({"weights": torch.zeros(100_000)}, target)
        else:
            from sure_vqa.evaluate.judge.cache import JudgeCache

            with JudgeCache(target) as cache:  # names its file itself
                cache.put_many({f"k{i}": "x" * 4000 for i in range(100)},
                               {f"k{i}": "open.v1" for i in range(100)}, "judge")

    try:
        if writer == "sqlite":
            write()
        else:
            with system_errors.writing_to(target):  # as the stages name the folder they write
                write()
    except Exception as err:  # noqa: BLE001 - each library's own type is what is being checked
        raised = err
    else:
        pytest.fail(f"{writer} wrote 400 KB into 8 KB")
    message = system_errors.describe(raised)
    assert message is not None, repr(raised)
    assert message.startswith(f"cannot write {target} (")
    expected = "a write came up short, most often a full disk" if writer == "torch" else "No space left on device"
    assert expected in message and " free on that file system)." in message, message


def test_a_programming_error_is_not_taken_for_a_disk_failure() -> None:
    assert system_errors.describe(ValueError("no space left on device")) is None
    assert system_errors.describe(FileNotFoundError(2, "No such file or directory", "x")) is None
    message = system_errors.describe(PermissionError(13, "Permission denied", "/data/out.json"))
    assert message is not None and message.startswith("cannot write or read /data/out.json (Permission denied).")
