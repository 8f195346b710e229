"""`sure-vqa`: the installed command, every subcommand composing its own config the same way (--help, --cfg job,
overrides, exit 2 for a bad one), `ls` from the registries, and the README's copy of `--help` and `ls`."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from sure_vqa import cli
from sure_vqa.config import compose
from sure_vqa.listing import KINDS, listing
from sure_vqa.models import methods
from tests.conftest import PROJECT_ROOT, SURE_VQA

LEAVES = [(" ".join(path), command) for path, command in (
    *(((c.name,), c) for c in cli.COMMANDS if not c.subcommands and c.name != "ls"),
    *(((c.name, s.name), s) for c in cli.COMMANDS for s in c.subcommands))]


def test_the_installed_command_lists_every_subcommand() -> None:
    script = Path(sys.executable).parent / "sure-vqa"  # [project.scripts], installed by `pip install -e .`
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^  (\S+)  ", done.stdout, flags=re.MULTILINE)
    assert listed == [c.name for c in cli.COMMANDS]
    assert {"train", "infer", "eval", "study", "report", "baselines", "splits", "prepare", "doctor", "demo",
            "convert-llava-med", "corruptions", "rater", "ls"} == set(listed)


def test_the_readme_shows_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ sure-vqa --help\n", 1)[1].split("\n\n$ sure-vqa ls", 1)[0]
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.rstrip() == shown.rstrip()
    ls_shown = readme.split("$ sure-vqa ls methods judge_backends\n", 1)[1].split("\n```", 1)[0]
    assert listing(["methods", "judge_backends"]) == ls_shown.rstrip()


@pytest.mark.parametrize(("name", "command"), LEAVES, ids=[name for name, _ in LEAVES])
def test_each_subcommand_prints_its_composed_config(name: str, command: cli.Command,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`--cfg job` is Hydra's: the config of config/<command.config>.yaml, as `compose` (the study) makes it."""
    cli.main([*name.split(), "--cfg", "job"])
    assert yaml.safe_load(capsys.readouterr().out) == OmegaConf.to_container(compose(command.config))


def test_overrides_and_groups_reach_the_composed_config(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["train", "--cfg", "job", "model_type=ia3", "train.max_steps=3"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["model_type"], printed["train"]["max_steps"]) == ("ia3", 3)
    cli.main(["demo", "--cfg", "job", "demo_size=quick", "out=/tmp/elsewhere"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["stages"]["train"]["train"]["max_steps"] == 2 and printed["out"] == "/tmp/elsewhere"
    assert printed["paths"]["experiment_root"] == "${out}/experiments"  # resolved when the demo runs


@pytest.mark.parametrize("name", ["train", "study", "splits list", "rater analyze"])
def test_help_names_the_command_and_lists_its_settings(name: str) -> None:
    # a process of its own: Hydra configures logging for --help, which replaces every handler of the process
    done = subprocess.run([*SURE_VQA, *name.split(), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    command = dict(LEAVES)[name]
    assert out.startswith(f"sure-vqa {name}: {command.summary}")
    for key in compose(command.config):
        assert f"\n{key}:" in out, key  # every top-level setting, with its default


@pytest.mark.parametrize(("argv", "message"), [
    (["trian"], "error: sure-vqa has no command 'trian'; commands: train, infer, eval"),
    (["splits", "bild"], "error: sure-vqa splits has no command 'bild'; commands: build, list"),
    (["train", "train.max_stepz=3"], "error: Could not override 'train.max_stepz'"),
    (["corruptions", "out=/tmp/x.png"], "error: image is not set; give image=VALUE"),
    (["ls", "models"], "error: 'models' is not a kind of entry"),
])
def test_a_bad_command_or_setting_is_one_line_and_exit_2(argv: list[str], message: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_ls_lists_every_registry_entry_and_a_new_one_without_listing_it(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["ls"])
    out = capsys.readouterr().out
    assert [line.split(" (")[0] for line in out.splitlines() if line and not line.startswith(" ")] == list(KINDS)
    for name in methods.names():
        assert re.search(rf"^  {name} +{re.escape(methods.get(name).description)}$", out, flags=re.MULTILINE)
    extra = methods.FinetuneMethod(name="bitfit", settings=dataclasses.make_dataclass("BitfitSettings", []), prepare=lambda m, c, x: m,
                                   uses_adapter=False, default_lr=1e-3, description="biases only")
    with methods.REGISTRY.temporarily(extra):
        assert "  bitfit  biases only" in listing(["methods"])
    assert "bitfit" not in listing(["methods"])
