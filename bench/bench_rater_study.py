"""How fast the rater study stores ratings and analyses them.

    python bench/bench_rater_study.py [--ratings 200] [--resamples 100 1000]

Prints, side by side: ratings per second and latency when written straight into the database and when posted by
1, 4 and 8 concurrent raters to a real server (human_rater_study/serve.py, uvicorn on 127.0.0.1); then the time of
the analysis of a 5-rater, 50-question study for each number of bootstrap resamples, and of its plots.
Every write is committed with synchronous=FULL before it is acknowledged, so these are durable-write figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from sure_vqa import naming
from sure_vqa.rater import analysis, selection
from sure_vqa.rater.app import rater_order
from sure_vqa.rater.db import RatingStore
from sure_vqa.rater.export import export_ratings
from sure_vqa.rater.study import Study, load_study
from tests.rater_helpers import JUDGE, free_port, make_eval_folder, start_server, stop_server


def make_study(root: Path, questions: int) -> Study:
    eval_dir, image_root = make_eval_folder(root, n_open=questions * 6 // 5 + 6)
    settings = selection.SelectionSettings(num_questions=questions, seed=0, judge=JUDGE)
    return load_study(selection.create_study(eval_dir, settings, selection.image_folder_resolver(image_root)))


def row(label: str, count: int, seconds: float, latencies: list[float]) -> str:
    p95 = sorted(latencies)[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    median = statistics.median(latencies) if latencies else float("nan")
    return f"{label:<28} {count:>7} {count / seconds:>10.1f} {1000 * median:>10.2f} {1000 * p95:>10.2f}"


def bench_direct(study: Study, db: Path, total: int) -> str:
    store = RatingStore(db)
    store.register_rater("direct")
    latencies = []
    start = time.perf_counter()
    for k in range(total):
        item = study.items[k % len(study.items)]
        t = time.perf_counter()
        store.save_rating(study.study_id, "direct", item.qid, float(1 + k % 5), f"direct-{k:06d}")
        latencies.append(time.perf_counter() - t)
    return row("database, no HTTP", total, time.perf_counter() - start, latencies)


def bench_http(study: Study, port: int, raters: int, total: int, tag: str) -> str:
    per_rater = total // raters
    latencies: list[float] = []
    lock = threading.Lock()

    def session(name: str) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            client.post("/api/login", json={"name": name}).raise_for_status()
            order = rater_order(study, name)
            for k in range(per_rater):
                body = {"qid": order[k % len(order)].qid, "score": 1 + k % 5, "request_id": f"{name}-{k:06d}"}
                t = time.perf_counter()
                client.post(f"/api/studies/{study.study_id}/ratings", json=body).raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=session, args=(f"{tag}{r}",)) for r in range(raters)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return row(f"HTTP, {raters} rater(s)", per_rater * raters, time.perf_counter() - start, latencies)


def bench_analysis(root: Path, resamples: list[int]) -> list[str]:
    study = make_study(root, 50)
    store = RatingStore(study.folder / naming.RATER_DB_FILE)
    rng = np.random.default_rng(0)
    for rater in ("r1", "r2", "r3", "r4", "r5"):
        store.register_rater(rater)
        for k, item in enumerate(study.items):
            score = float(np.clip((item.judge_score or 3.0) + rng.integers(-1, 2), 1, 5))
            store.save_rating(study.study_id, rater, item.qid, score, f"{rater}-{k:05d}")
    export_ratings(study)
    human = analysis.load_human_scores(study.eval_dir, "open")
    automatic, judge_column = analysis.load_automatic_scores(study.eval_dir, "open", JUDGE)
    lines = []
    result = None
    for n in resamples:
        start = time.perf_counter()
        result = analysis.analyse(human, automatic, "open", judge_column, n_resamples=n)
        lines.append(f"{f'analyse, {n} resamples':<28} {time.perf_counter() - start:>10.2f} s")
    start = time.perf_counter()
    files = analysis.write_outputs(result, human, automatic, root / "analysis")
    lines.append(f"{f'plots and tables ({len(files)} files)':<28} {time.perf_counter() - start:>10.2f} s")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=200, help="ratings written per configuration")
    parser.add_argument("--resamples", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        study = make_study(root / "writes", 50)
        print(f"{'writes':<28} {'ratings':>7} {'per s':>10} {'median ms':>10} {'p95 ms':>10}")
        print(bench_direct(study, root / "direct.sqlite", args.ratings))
        port = free_port()
        server = start_server(study.folder, root / "http.sqlite", port, root / "run")
        try:
            for raters in (1, 4, 8):
                print(bench_http(study, port, raters, args.ratings, f"c{raters}r"))
        finally:
            stop_server(server)
        print()
        print("analysis of 5 raters x 50 questions")
        for line in bench_analysis(root / "analysis_study", args.resamples):
            print(line)


if __name__ == "__main__":
    main()
