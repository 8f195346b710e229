"""Builders shared by the rater-study tests: a real eval folder on disk and a real app server process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

PROJECT_ROOT = Path(__file__).resolve().parents[2]
JUDGE = "gemma"

OPEN_ANSWERS = [
    ("What organ is shown?", "liver", "the liver"),
    ("Where is the lesion?", "left lobe of the lung", "right lung"),
    ("Which organ is abnormal?", "heart", "kidney"),
    ("What is the largest organ?", "liver", "liver"),  # identical: never selected
    ("What modality is used?", "ct", "mri scan"),
    ("Where is the tumor?", "upper right", "upper left region"),
]


def make_image(path: Path, index: int) -> Path:
    """A small PNG that differs per index (so the study's content-hash names differ)."""
    image = Image.new("L", (48, 40), color=(index * 37) % 256)
    ImageDraw.Draw(image).rectangle([index % 20, 5, index % 20 + 12, 25], fill=255 - (index * 37) % 256)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def make_eval_folder(root: Path, n_open: int = 30, n_closed: int = 8, n_images: int = 12) -> tuple[Path, Path]:
    """An eval folder with test_results.json, the judge's files and open_ended_metrics.json, plus its images.

    Returns (eval_dir, image_root). Judge scores cycle through 1..5 (every 7th is a judge failure).
    """
    image_root = root / "dataset" / "imgs"
    for k in range(n_images):
        make_image(image_root / f"img_{k}.png", k)
    eval_dir = root / "experiments" / "model" / "eval" / "DEMO_val_all"
    eval_dir.mkdir(parents=True)
    rows = []
    for i in range(n_open):
        question, gt, pred = OPEN_ANSWERS[i % len(OPEN_ANSWERS)]
        rows.append({"qid": f"o{i:03d}", "question": f"{question} ({i})", "gt": gt, "pred": pred,
                     "answer_type": "OPEN", "img_name": f"img_{i % n_images}.png"})
    for i in range(n_closed):
        gt, pred = ("yes", "no") if i % 2 == 0 else ("CT", "MRI")
        categories = ["yes", "no"] if i % 2 == 0 else ["CT", "MRI"]
        if i % 4 == 3:
            gt, pred, categories = "both", "left", ["left", "right", "both", "none"]
        rows.append({"qid": f"c{i:03d}", "question": f"closed question {i}", "gt": gt, "pred": pred,
                     "answer_type": "CLOSED", "img_name": f"img_{i % n_images}.png", "answer_categories": categories})
    (eval_dir / "test_results.json").write_text(json.dumps(rows, indent=1))
    write_judge_files(eval_dir, rows)
    from sure_vqa.evaluate.metrics.traditional import score_open_rows

    open_rows = [r for r in rows if r["answer_type"] == "OPEN"]
    (eval_dir / "open_ended_metrics.json").write_text(json.dumps(score_open_rows(open_rows, progress=False)))
    return eval_dir, image_root


def write_judge_files(eval_dir: Path, rows: list[dict]) -> None:
    """`gemma_metrics.json` / `gemma_metrics_closed.json` in the layout sure_vqa.evaluate.run writes (summary, then
    each row with its Judgment). Open scores cycle through 1..5 and every 7th open row is a judge failure."""
    from sure_vqa.evaluate.judge import rubrics
    from sure_vqa.evaluate.judge.scoring import Judgment, summarize

    def judged(row: dict, rubric: str, score: float | None) -> Judgment:
        failure = "no score field" if score is None else None
        reply = "I cannot tell." if score is None else f'{{"score": {score:g}}}'
        return Judgment(row["qid"], row["question"], row["gt"], row["pred"], row["answer_type"], rubric,
                        f"{rubric}.v1", score, False, reply, failure)

    open_rows = [r for r in rows if r["answer_type"] == "OPEN"]
    open_judgments = [judged(r, rubrics.OPEN, None if i % 7 == 6 else float(1 + i % 5)) for i, r in enumerate(open_rows)]
    closed_rows = [r for r in rows if r["answer_type"] == "CLOSED"]
    closed_judgments = []
    for r in closed_rows:
        rubric = rubrics.route(r["answer_type"], r.get("answer_categories"))
        closed_judgments.append(judged(r, rubric, 0.5 if rubric == rubrics.TWO_OPTION else 0.0))
    for name, judgments, source in (("gemma_metrics.json", open_judgments, open_rows),
                                    ("gemma_metrics_closed.json", closed_judgments, closed_rows)):
        summary = summarize(judgments, JUDGE, "gemma-2-9b-it@test", "v1")
        file_rows = [{**row, **j.to_json()} for row, j in zip(source, judgments, strict=True)]
        (eval_dir / name).write_text(json.dumps([summary, *file_rows]))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(study_dir: Path, db: Path, port: int, workdir: Path, timeout_s: float = 90.0) -> subprocess.Popen:
    """`python human_rater_study/serve.py` as a real uvicorn process on 127.0.0.1; waits until it answers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / f"server_{port}_{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - lives with the process
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "human_rater_study" / "serve.py"), f"rater.study_dir={study_dir}",
         f"rater.db={db}", "rater.host=127.0.0.1", f"rater.port={port}", f"hydra.run.dir={workdir / 'hydra'}"],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {Path(log.name).read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/studies", timeout=1.0).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not answer within {timeout_s} s: {Path(log.name).read_text()[-2000:]}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
