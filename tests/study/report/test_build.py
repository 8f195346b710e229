"""The robustness report on a written experiment tree: numbers against hand calculation, baselines, the swap,
corruption strengths, the missing-run list, the command line."""

import math
import os
import subprocess

import pandas as pd
import pytest

from sure_vqa import cli, naming
from sure_vqa.config import ConfigError
from sure_vqa.study.report import ReportSettings, build_report, render
from sure_vqa.study.report import stats as report_stats
from tests.conftest import PROJECT_ROOT, SURE_VQA
from tests.helpers.report_fixtures import (
    LORA_OOD,
    SWAP,
    D,
    F,
    V,
    build_tree,
    finetuned_dir,
    run_dir,
    spread,
    write_run,
)

SETTINGS = ReportSettings(n_resamples=500, swaps=[{"dataset": D, "data_shift": F, "ood_value": V, "swap": SWAP}])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    build_tree(root)
    files = build_report(root, settings=SETTINGS, progress=False)
    summary = pd.read_csv(files.summary_csv)
    return root, files, summary


def row(summary, label, metric, kind="open", shift="SLAKE modality=X-Ray"):
    found = summary[(summary["label"] == label) & (summary["metric"] == metric) & (summary["answer_kind"] == kind)
                    & (summary["shift"] == shift)]
    assert len(found) == 1, (label, metric, kind, found)
    return found.iloc[0]


def test_files_are_written_under_the_report_dir(report):
    root, files, _ = report
    assert files.out_dir == naming.report_dir(root)
    for path in (files.summary_csv, files.corruption_csv, files.missing_csv, files.markdown, files.html):
        assert path.is_file() and path.stat().st_size > 0


def test_iid_ood_and_rr_over_seeds_match_hand_calculation(report):
    _, _, summary = report
    f1 = row(summary, "lora_rank16_lr3e-4", "f1_score")
    assert f1["seeds"] == "123,124,125" and f1["role"] == "model"
    assert f1["iid_mean"] == pytest.approx(0.7)
    assert f1["iid_std"] == pytest.approx(0.1)  # sqrt((0.1² + 0.1² + 0²) / 2)
    ood_mean = (0.4 + 0.45 + 0.28) / 3
    assert f1["ood_mean"] == pytest.approx(ood_mean)
    assert f1["ood_std"] == pytest.approx(math.sqrt(sum((v - ood_mean) ** 2 for v in LORA_OOD) / 2))
    # RR per seed: 0.4/0.8 = 0.5, 0.45/0.6 = 0.75, 0.28/0.7 = 0.4 -> mean 0.55, std sqrt(0.0325)
    assert f1["rr_mean"] == pytest.approx(0.55)
    assert f1["rr_std"] == pytest.approx(math.sqrt((0.05**2 + 0.2**2 + 0.15**2) / 2))
    assert f1["rr_n"] == 3 and f1["diff_mean"] == pytest.approx(0.7 - ood_mean)


def test_bootstrap_interval_is_over_images_of_questions_averaged_over_seeds(report):
    _, _, summary = report
    f1 = row(summary, "lora_rank16_lr3e-4", "f1_score")
    # Each question's mean over the seeds: q0 = mean(iid) + 0.1, q1 = mean - 0.1, q2 = q3 = mean; each question
    # asks about its own image (imgo0.png ...), so each image is a cluster of one question.
    iid_q = dict(zip(["o0", "o1", "o2", "o3"], [0.8, 0.6, 0.7, 0.7], strict=True))
    ood_mean = sum(LORA_OOD) / 3
    ood_q = dict(zip(["o0", "o1", "o2", "o3"], [ood_mean + 0.1, ood_mean - 0.1, ood_mean, ood_mean], strict=True))
    images = {q: f"img{q}.png" for q in iid_q}
    expected = report_stats.cluster_bootstrap_difference(report_stats.clusters_of(iid_q, images),
                                                         report_stats.clusters_of(ood_q, images), seed=0,
                                                         n_resamples=500)
    assert (f1["diff_ci_low"], f1["diff_ci_high"]) == (pytest.approx(expected.low), pytest.approx(expected.high))
    assert f1["diff_ci_low"] < f1["diff_mean"] < f1["diff_ci_high"]
    assert f1["iid_questions"] == 4 and f1["ood_questions"] == 4
    assert f1["iid_images"] == 4 and f1["ood_images"] == 4


def test_judge_failures_and_undefined_rows_are_counted_not_zeroed(report):
    _, _, summary = report
    judge = row(summary, "lora_rank16_lr3e-4", "gemma")
    assert judge["source"] == "gemma" and judge["metric_label"] == "gemma judge"
    assert judge["judge_failures_iid"] == 3 and judge["judge_failures_ood"] == 0  # one per seed
    assert judge["iid_mean"] == pytest.approx(4.0)  # (5 + 4 + 3) / 3, the failure left out
    assert judge["iid_questions"] == 3  # the failed question has no score in any seed
    accuracy = row(summary, "lora_rank16_lr3e-4", "accuracy", "closed")
    assert accuracy["undefined_iid"] == 0 and accuracy["undefined_ood"] == 1
    # ood accuracy per seed: 1/3 (undefined left out), 0.5, 0.5
    assert accuracy["ood_mean"] == pytest.approx((1 / 3 + 0.5 + 0.5) / 3)
    assert math.isnan(accuracy["judge_failures_iid"])


def test_baselines_beside_the_models(report):
    _, _, summary = report
    labels = list(dict.fromkeys(summary[summary["shift"] == "SLAKE modality=X-Ray"]["label"]))
    assert labels == [
        "ia3_lr3e-2", "lora_rank16_lr3e-4", "zero-shot (pretrained)", "most frequent answer",
        "lora_rank16_lr3e-4 · no image at test", "lora_rank16_lr3e-4 · no image in training",
        "lora_rank16_lr3e-4 · no image in training and test", "lora_rank16_lr3e-4 · iid/ood swap (trained on ood)",
    ]
    zero_shot = row(summary, "zero-shot (pretrained)", "f1_score")
    assert (zero_shot["role"], zero_shot["seeds"], zero_shot["iid_mean"], zero_shot["ood_mean"]) == (
        "baseline", "-", pytest.approx(0.2), pytest.approx(0.15))
    assert zero_shot["rr_mean"] == pytest.approx(0.75) and math.isnan(zero_shot["rr_std"])
    no_image = row(summary, "lora_rank16_lr3e-4 · no image at test", "f1_score")
    assert no_image["iid_mean"] == pytest.approx(0.5) and no_image["ood_mean"] == pytest.approx(sum(LORA_OOD) / 3 - 0.1)
    most_frequent = row(summary, "most frequent answer", "f1_score")
    assert most_frequent["iid_mean"] == pytest.approx(0.25) and math.isnan(most_frequent["ood_mean"])


def test_swap_rows_are_scored_on_this_shifts_splits(report):
    _, _, summary = report
    swap = row(summary, "lora_rank16_lr3e-4 · iid/ood swap (trained on ood)", "f1_score")
    # The swapped model's ood run is on X-Ray's iid data, its iid run on X-Ray's ood data.
    assert swap["iid_mean"] == pytest.approx(0.55) and swap["ood_mean"] == pytest.approx(0.65)
    assert swap["swap"] and swap["role"] == "baseline"
    # And the swapped shift has its own table, with the X-Ray models as its swap.
    back = row(summary, "lora_rank16_lr3e-4 · iid/ood swap (trained on ood)", "f1_score",
               shift="SLAKE modality=CT+MRI")
    assert back["seeds"] == "123,124,125" and back["iid_mean"] == pytest.approx(sum(LORA_OOD) / 3)


def test_corruption_results_by_strength(report):
    _, files, _ = report
    corruptions = pd.read_csv(files.corruption_csv)
    f1 = corruptions[(corruptions["metric"] == "f1_score") & (corruptions["split"] == "iid")]
    assert list(f1["strength"]) == ["none", "low", "high"]
    assert list(f1["mean"]) == pytest.approx([0.7, 0.65, 0.5])
    assert list(f1["n_seeds"]) == [3, 3, 3]
    assert f1.iloc[1][["blur", "brightness", "noise", "p_blur"]].tolist() == ["low", "low", "low", 0.5]


def test_missing_runs_are_listed(report):
    root, files, _ = report
    missing = pd.read_csv(files.missing_csv, dtype={"seed": "Int64"})
    xray = missing[missing["shift"] == "SLAKE modality=X-Ray"]
    found = {(r.what, None if pd.isna(r.seed) else int(r.seed), r.split, r.reason) for r in xray.itertuples()}
    ia3 = "ia3_lr3e-2"
    expected = set()
    # IA3 was run with seed 123 only: the other seeds of LoRA's grid are missing entirely.
    runs = [("", "iid"), ("", "ood"), (" · no image at test", "iid"), (" · no image at test", "ood"),
            (" · corruption low", "iid"), (" · corruption low", "ood"), (" · corruption high", "iid"),
            (" · corruption high", "ood")]
    for seed in (124, 125):
        model = finetuned_dir(root, D, F, V, "ia3", seed).name
        expected |= {(ia3 + what, seed, split, f"model folder {model} not found") for what, split in runs}
    # Seed 123 has its clean runs, but not the no-image and corrupted ones; its ood run lacks a judge file.
    expected |= {(ia3 + what, 123, split, "not found") for what, split in runs[2:]}
    expected.add((ia3, 123, "ood", "no gemma_metrics_closed.json"))
    expected.add(("most frequent answer", None, "ood", "not found"))
    assert found == expected
    not_used = missing[missing["what"] == "not used"]
    assert set(not_used["run"]) == {"SLAKE_test_all", "llava-not-a-run-name"}
    # The swapped shift has no baselines and no controls of its own: they are listed for it.
    swapped = set(missing[missing["shift"] == "SLAKE modality=CT+MRI"]["what"])
    assert {"zero-shot (pretrained)", "most frequent answer", "controls (R3)"} <= swapped


def test_markdown_holds_the_tables(report):
    _, files, _ = report
    text = files.markdown.read_text()
    assert "## SLAKE modality=X-Ray" in text and "#### F1" in text
    assert "| lora_rank16_lr3e-4 " in text and "0.700 ± 0.100" in text and "0.550 ± 0.180" in text
    missing = pd.read_csv(files.missing_csv)
    assert f"## Missing or incomplete runs ({len(missing)})" in text
    assert "| most frequent answer" in text and "model folder llava-SLAKE_train_iid_modality_X-Ray-finetune_ia3" in text


def test_unreadable_metrics_are_listed_not_fatal(tmp_path):
    lora = finetuned_dir(tmp_path, D, F, V, "lora", 123)
    write_run(run_dir(lora, D, F, V, "iid"), spread(0.5))
    broken = write_run(run_dir(lora, D, F, V, "ood"), spread(0.4))
    (broken / naming.OPEN_METRICS_FILE).write_text("{not json")
    files = build_report(tmp_path, tmp_path / "out", ReportSettings(n_resamples=200), progress=False)
    missing = pd.read_csv(files.missing_csv)
    problem = missing[missing["what"] == "unreadable metrics"]
    assert len(problem) == 1 and "not a readable JSON metrics file" in problem.iloc[0]["reason"]
    summary = pd.read_csv(files.summary_csv)
    f1 = summary[(summary["metric"] == "f1_score")].iloc[0]
    assert f1["iid_mean"] == pytest.approx(0.5) and math.isnan(f1["ood_mean"])


def test_empty_or_absent_root_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        build_report(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="holds no model folders"):
        build_report(tmp_path)
    with pytest.raises(ConfigError, match="confidence"):
        ReportSettings(confidence=95)


def test_command_line(tmp_path):
    lora = finetuned_dir(tmp_path / "exp", D, F, V, "lora", 123)
    write_run(run_dir(lora, D, F, V, "iid"), spread(0.5))
    write_run(run_dir(lora, D, F, V, "ood"), spread(0.4))
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("EXPERIMENT_ROOT_DIR", None)
    command = [*SURE_VQA, "report"]
    done = subprocess.run([*command, f"experiment_root={tmp_path / 'exp'}", f"out={tmp_path / 'out'}",
                           "n_resamples=300"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "out" / render.REPORT_HTML)
    summary = pd.read_csv(tmp_path / "out" / render.REPORT_SUMMARY_CSV)
    assert set(summary["metric"]) >= {"f1_score", "accuracy", "gemma"}
    failed = subprocess.run([*command, f"experiment_root={tmp_path / 'missing'}"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2 and "is not a folder" in failed.stderr, failed.stderr


@pytest.mark.parametrize(("args", "message"), [([], "experiment_root is not set"),
                                               (["colour=red"], "Could not override 'colour'"),
                                               (["n_resamples"], "Error parsing override 'n_resamples'")])
def test_command_line_errors_exit_2(tmp_path, monkeypatch, capsys, args, message):

    monkeypatch.delenv("EXPERIMENT_ROOT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here
    if args:
        args = [f"experiment_root={tmp_path}", *args]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["report", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_command_line_defaults_to_the_environment(tmp_path, monkeypatch):

    lora = finetuned_dir(tmp_path, D, F, V, "lora", 123)
    write_run(run_dir(lora, D, F, V, "iid"), spread(0.5))
    write_run(run_dir(lora, D, F, V, "ood"), spread(0.4))
    monkeypatch.setenv("EXPERIMENT_ROOT_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    cli.main(["report", "n_resamples=200"])
    assert (naming.report_dir(tmp_path) / render.REPORT_HTML).is_file()


def test_judge_identity_is_reported_and_original_files_are_read(tmp_path):
    """Files written by the original SURE-VQA code: `avg_mistral_score`, an unparsed reply kept as the score."""
    import json

    lora = finetuned_dir(tmp_path, D, F, V, "lora", 123)
    for split, scores in (("iid", [5, 3, "The answer is partially right"]), ("ood", [2, 2, 5])):
        folder = write_run(run_dir(lora, D, F, V, split), spread(0.5))
        rows = [{"qid": f"o{i}", "answer_type": "OPEN", "mistral_score": s} for i, s in enumerate(scores)]
        numeric = [s for s in scores if not isinstance(s, str)]
        (folder / "mistral_metrics.json").write_text(json.dumps([{"avg_mistral_score": sum(numeric) / len(numeric)},
                                                                 *rows]))
    files = build_report(tmp_path, settings=ReportSettings(n_resamples=200), progress=False)
    summary = pd.read_csv(files.summary_csv)
    mistral = row(summary, "lora_rank16_lr3e-4", "mistral")
    assert mistral["iid_mean"] == pytest.approx(4.0) and mistral["ood_mean"] == pytest.approx(3.0)
    assert mistral["judge_failures_iid"] == 1 and mistral["iid_questions"] == 2
    assert mistral["metric_label"] == "mistral judge"
    gemma = row(summary, "lora_rank16_lr3e-4", "gemma")
    assert gemma["judge_version"] == "hf:gemma-2-9b-it, prompt open.v1"
    judges = next(line for line in files.markdown.read_text().splitlines() if line.startswith("- judges: "))
    assert judges == "- judges: hf:gemma-2-9b-it, prompt closed.v1+two_option.v1; hf:gemma-2-9b-it, prompt open.v1"


def test_bad_swaps_and_headline_settings_are_config_errors(tmp_path):
    lora = finetuned_dir(tmp_path, D, F, V, "lora", 123)
    write_run(run_dir(lora, D, F, V, "iid"), spread(0.5))
    with pytest.raises(ConfigError, match="lacks swap"):
        build_report(tmp_path, settings=ReportSettings(swaps=[{"dataset": D, "data_shift": F, "ood_value": V}]),
                     progress=False)
    with pytest.raises(ConfigError, match="headline.yes_no is not an answer kind"):
        ReportSettings(headline={"yes_no": ["accuracy"]})


def test_each_base_model_keeps_its_own_rows_and_zero_shot_baseline(tmp_path):
    """LoRA on LLaVA-Med (two seeds) and on MedGemma (two seeds), each with its zero-shot model: the rows of one base
    model stay together, each mean is over its own folders only (by hand: the spreads' means), and the missing
    list expects each base model's zero-shot runs."""
    medgemma = "medgemma-4b-it"
    tag = {seed: naming.finetune_tag("lora", 3e-4, seed, ["rank16"]) for seed in (123, 124)}
    train_split = naming.split_name(D, "train", "iid", F, V)
    for base, iid, ood in (("llava", (0.8, 0.6), (0.4, 0.2)), (medgemma, (0.9, 0.7), (0.6, 0.5))):
        for seed, i, o in zip((123, 124), iid, ood, strict=True):
            model = naming.experiment_dir(tmp_path, naming.experiment_name(train_split, tag[seed], base))
            write_run(run_dir(model, D, F, V, "iid"), spread(i))
            write_run(run_dir(model, D, F, V, "ood"), spread(o))
    write_run(run_dir(naming.pretrained_dir(tmp_path, D), D, F, V, "iid"), spread(0.3))
    write_run(run_dir(naming.pretrained_dir(tmp_path, D, medgemma), D, F, V, "iid"), spread(0.5))
    files = build_report(tmp_path, settings=ReportSettings(n_resamples=100), progress=False)
    summary = pd.read_csv(files.summary_csv)
    labels = list(dict.fromkeys(summary["label"]))
    assert labels == [f"[{medgemma}] lora_rank16_lr3e-4", "lora_rank16_lr3e-4", f"zero-shot [{medgemma}] pretrained",
                      "zero-shot (pretrained)"]
    assert (tmp_path / f"{medgemma}-{train_split}-{tag[123]}").is_dir()
    llava_lora, medgemma_lora = row(summary, "lora_rank16_lr3e-4", "f1_score"), row(
        summary, f"[{medgemma}] lora_rank16_lr3e-4", "f1_score")
    assert (llava_lora["iid_mean"], llava_lora["ood_mean"]) == (pytest.approx(0.7), pytest.approx(0.3))
    assert (medgemma_lora["iid_mean"], medgemma_lora["ood_mean"]) == (pytest.approx(0.8), pytest.approx(0.55))
    # RR per seed then averaged: LLaVA-Med (0.4/0.8 + 0.2/0.6)/2, MedGemma (0.6/0.9 + 0.5/0.7)/2
    assert llava_lora["rr_mean"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert medgemma_lora["rr_mean"] == pytest.approx((2 / 3 + 5 / 7) / 2)
    assert row(summary, f"zero-shot [{medgemma}] pretrained", "f1_score")["iid_mean"] == pytest.approx(0.5)
    missing = pd.read_csv(files.missing_csv)
    zero_shot_missing = missing[missing["what"].str.startswith("zero-shot")]
    assert sorted(set(zero_shot_missing["what"])) == ["zero-shot (pretrained)", f"zero-shot [{medgemma}] pretrained"]
    assert set(zero_shot_missing["split"]) == {"ood"}


def test_a_shift_without_any_control_is_one_row_not_one_per_run(tmp_path):
    """grid.control_shifts leaves some shifts with clean runs only: the report says so once; as soon as one control
    run exists there, every missing control run is listed again."""
    lora = finetuned_dir(tmp_path, D, F, V, "lora", 123)
    for split, scores in (("iid", spread(0.5)), ("ood", spread(0.4))):
        write_run(run_dir(lora, D, F, V, split), scores)

    def missing_rows() -> set[tuple[str, str]]:
        files = build_report(tmp_path, settings=ReportSettings(n_resamples=100))
        table = pd.read_csv(files.missing_csv)
        table = table[(table["shift"] == f"{D} {F}={V}") & ~table["what"].isin(["zero-shot (pretrained)",
                                                                               "most frequent answer"])]
        return {(r.what, "" if pd.isna(r.split) else r.split) for r in table.itertuples()}

    assert missing_rows() == {("controls (R3)", "")}
    write_run(run_dir(lora, D, F, V, "iid", no_image=True), spread(0.3))
    assert missing_rows() == {("lora_rank16_lr3e-4 · no image at test", "ood"), ("no-image baseline", "")}
