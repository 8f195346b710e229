"""`sure-vqa`: one command with a subcommand for every job (as lm-eval's `lm-eval run|ls`).

    sure-vqa train [key=value ...]          sure-vqa splits build|list [key=value ...]
    sure-vqa infer [key=value ...]          sure-vqa rater select|serve|analyze [key=value ...]
    sure-vqa study [-m] [key=value ...]     sure-vqa ls [datasets|shifts|families|methods|...]

Every subcommand but `ls` is a Hydra app over its own config in config/ (the only place its settings are set),
so all of them take the same overrides (`key=value`, `group=option`, `+key=value`), `--help` (the settings and
config groups), `--cfg job` (the composed config) and, for the study, `-m` (a multirun, Slurm included). A bad
setting exits 2 with one line naming it (sure_vqa.config.run_entry). train.py, inference.py and run_eval.py stay
as the paper's entry points and run the same code.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sure_vqa.config import CONFIG_DIR, EXIT_CONFIG_ERROR, load_env, run_entry, run_hydra_app
from sure_vqa.listing import KINDS, list_command

PROG = "sure-vqa"


@dataclass(frozen=True)
class Command:
    """One subcommand: `config` is its Hydra config (config/<config>.yaml) and `run` ("module:function") takes the
    composed config. `keeps_outputs`: Hydra writes its usual outputs/<date>/<time>/ folder (the config and log of
    a stage run); the other commands write nothing but their own files."""

    name: str
    summary: str
    config: str = ""
    run: str = ""
    keeps_outputs: bool = False
    subcommands: tuple[Command, ...] = ()

    def target(self) -> Callable[[Any], Any]:
        module, function = self.run.split(":")
        return getattr(importlib.import_module(module), function)


RATER_CONFIG = "rater/rater_study_defaults"
SPLITS_CONFIG = "commands/splits"
PREPARE_CONFIG = "commands/prepare"

COMMANDS: tuple[Command, ...] = (
    Command("train", "fine-tune a VLM on the iid train split of a shift (docs/training.md)",
            "train/training_defaults", "sure_vqa.train.run:train", keeps_outputs=True),
    Command("infer", "answer a test split with a fine-tuned or the zero-shot model (docs/inference.md)",
            "inference/inference_defaults", "sure_vqa.infer.run:run_inference", keeps_outputs=True),
    Command("eval", "score a run's answers: traditional metrics and the LLM judge (docs/evaluation.md)",
            "eval/metrics_eval_defaults", "sure_vqa.evaluate.run:run_evaluation", keeps_outputs=True),
    Command("study", "the whole grid: train, infer, evaluate, report; -m for one job per cell (docs/study.md)",
            "study/study_defaults", "sure_vqa.study.run:study_command", keeps_outputs=True),
    Command("report", "the robustness report of an experiment root (docs/report.md)",
            "study/report", "sure_vqa.study.report.build:report_command"),
    Command("baselines", "the most-frequent-answer baseline's answers (docs/report.md)",
            "study/most_frequent", "sure_vqa.study.baselines:baselines_command"),
    Command("splits", "the split files of a dataset and its shift fields (docs/data.md)", subcommands=(
        Command("build", "build (or check) the split files of one shift", SPLITS_CONFIG,
                "sure_vqa.data.split_commands:build_command"),
        Command("list", "the shift fields of a dataset, with question counts per value", SPLITS_CONFIG,
                "sure_vqa.data.split_commands:list_command"),
    )),
    Command("prepare", "a dataset's preparation step, once, before its split files (docs/data.md)", subcommands=(
        Command("ovqa", "clean OVQA's question files in place (backups kept)", PREPARE_CONFIG,
                "sure_vqa.data.prepare_commands:ovqa_command"),
        Command("mimic", "write MIMIC-CXR-VQA's question files with MIMIC-IV demographics", PREPARE_CONFIG,
                "sure_vqa.data.prepare_commands:mimic_command"),
        Command("demo-data", "build the bundled demo dataset into root (default: DATASET_ROOT_DIR/demo)",
                PREPARE_CONFIG, "sure_vqa.data.prepare_commands:demo_data_command"),
    )),
    Command("doctor", "check a study's setup before it runs: data, models, judge, GPU, disk (docs/study.md)",
            "commands/doctor", "sure_vqa.doctor:doctor_command"),
    Command("demo", "the whole study on the bundled demo, offline, on a CPU (README)",
            "study/demo", "sure_vqa.demo.run:demo_command"),
    Command("convert-llava-med", "convert the original LLaVA-Med v1.5 folder to transformers (docs/models.md)",
            "commands/convert_llava_med", "sure_vqa.models.convert_llava_med:convert_command"),
    Command("corruptions", "a PNG grid of an image under each corruption and strength "
            "(docs/images_and_corruptions.md)", "commands/corruptions", "sure_vqa.images.corruption_grid:grid_command"),
    Command("rater", "the human rater study (docs/rater_study.md)", subcommands=(
        Command("select", "choose the questions and write the study folder", RATER_CONFIG,
                "sure_vqa.rater.commands:select", keeps_outputs=True),
        Command("serve", "start the rating web app", RATER_CONFIG, "sure_vqa.rater.commands:serve",
                keeps_outputs=True),
        Command("analyze", "export the ratings and correlate them with the metrics", RATER_CONFIG,
                "sure_vqa.rater.commands:analyze", keeps_outputs=True),
    )),
    Command("ls", "list what the registries hold: " + ", ".join(KINDS)),
)


def _usage(commands: Sequence[Command], prefix: str) -> str:
    width = max(len(c.name) for c in commands)
    lines = [f"usage: {prefix} <command> [key=value ...] [--help] [--cfg job]", "", "commands:"]
    lines += [f"  {c.name.ljust(width)}  {c.summary}" for c in commands]
    lines += ["", f"`{prefix} <command> --help` lists a command's settings; every setting is a Hydra override."]
    return "\n".join(lines)


def _quoted(text: str) -> str:
    """A value for a Hydra override, quoted (the summaries hold spaces, commas and parentheses)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (as logging's own last-resort handler does), so that
    a handler kept alive by a traceback never writes to a stream that was replaced and closed since."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


def _is_override(arg: str) -> bool:
    """`key=value`, `+key=value`, `~key`: never a flag or a flag's value (`--cfg job`, `-cn NAME`)."""
    return not arg.startswith("-") and ("=" in arg or arg.startswith("~"))


def run_hydra_command(command: Command, name: str, argv: Sequence[str]) -> None:
    """Runs one command as a Hydra app over its config, with Hydra's own parsing of `argv`."""
    import hydra

    from sure_vqa.settings import register_configs

    register_configs()  # the settings dataclasses' defaults, which the configs take from the ConfigStore
    target = command.target()
    hydra_args = [f"hydra.job.name={name.replace(' ', '_')}", f"hydra.help.app_name={_quoted(f'{PROG} {name}')}",
                  f"hydra.help.header={_quoted(f'{PROG} {name}: {command.summary}')}"]
    if not command.keeps_outputs:
        # A report or a listing leaves no outputs/ folder behind, and logs its messages alone on stderr (stdout
        # carries what the command prints: a path, a table). Hydra's logging config is left out altogether: its
        # dictConfig would close every handler that exists (another library's, in a notebook or a test).
        hydra_args += ["hydra.output_subdir=null", "hydra.run.dir=.", "hydra/job_logging=none",
                       "hydra/hydra_logging=none"]

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=command.config)
    @run_entry
    def entry(cfg: Any) -> None:
        target(cfg)

    # Hydra parses sys.argv, and argparse takes the overrides as one run of positionals: the flags (and their
    # values) first, then these settings and the user's overrides together.
    overrides = [arg for arg in argv if _is_override(arg)]
    flags = [arg for arg in argv if not _is_override(arg)]
    saved, sys.argv = sys.argv, [f"{PROG} {name}", *flags, *hydra_args, *overrides]
    # Logging is left as it was found: a caller in the same process (a test, a notebook) keeps its own handlers,
    # and none of the command's outlives the stream it writes to.
    root, ours = logging.getLogger(), logging.getLogger("sure_vqa")
    saved_root, saved_ours = (list(root.handlers), root.level), (ours.level, ours.propagate)
    messages = _StderrHandler()
    if not command.keeps_outputs:  # the package's messages only, not every library's
        messages.setFormatter(logging.Formatter("%(message)s"))
        ours.addHandler(messages)
        ours.setLevel(logging.INFO)
        ours.propagate = False
    try:
        run_hydra_app(entry)
    finally:
        sys.argv = saved
        ours.removeHandler(messages)
        ours.setLevel(saved_ours[0])
        ours.propagate = saved_ours[1]
        for handler in root.handlers[:]:  # what Hydra's logging config added for a stage's job
            if handler not in saved_root[0]:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(saved_root[1])


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    commands, prefix = COMMANDS, PROG
    while True:
        if not args or args[0] in ("-h", "--help"):
            print(_usage(commands, prefix))
            sys.exit(0 if args else EXIT_CONFIG_ERROR)
        by_name = {c.name: c for c in commands}
        command = by_name.get(args[0])
        if command is None:
            print(f"error: {prefix} has no command {args[0]!r}; commands: {', '.join(by_name)}", file=sys.stderr)
            sys.exit(EXIT_CONFIG_ERROR)
        args, prefix = args[1:], f"{prefix} {command.name}"
        if not command.subcommands:
            break
        commands = command.subcommands
    load_env()
    if command.name == "ls":
        list_command(args)
        return
    run_hydra_command(command, prefix.removeprefix(f"{PROG} "), args)


if __name__ == "__main__":
    main()
