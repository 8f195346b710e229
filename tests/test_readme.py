"""Every `sure-vqa` command of the README and the docs composes: its subcommand exists and every key and group it
sets is one of that command's settings, with the value shown (`--cfg job`, Hydra's own check), so the documents
cannot drift from the configs. What the commands do is tested where each stage is (the demo end to end, the
report, splits, the converter, ...)."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from sure_vqa import cli
from tests.conftest import PROJECT_ROOT

DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (PROJECT_ROOT / "docs").glob("*.md")),
             *sorted(f"data/{p.name}" for p in (PROJECT_ROOT / "data").glob("*.md")), "human_rater_study/README.md"]
# What stands for "your own values" in the documents' lines.
PLACEHOLDERS = ("...", "[study overrides]", "[key=value ]")


def documented_commands(document: str) -> list[str]:
    """The `sure-vqa ...` lines of a document's code blocks (continuations joined, comments dropped, optional
    `[key=value]` settings kept)."""
    text = (PROJECT_ROOT / document).read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.match(r"^([A-Z_]+=\S+ )?sure-vqa ", line):
                for placeholder in PLACEHOLDERS:
                    line = line.replace(placeholder, "")
                line = re.sub(r"(^| )\[([\w.]+=[^\]]+)\]", r"\1\2", line)
                commands.append(" ".join(line.split()))
    return commands


COMMANDS = [(document, line) for document in DOCUMENTS for line in documented_commands(document)]


def test_the_readme_has_the_commands_of_each_stage() -> None:
    used = {line.split("sure-vqa ", 1)[1].split()[0] for document, line in COMMANDS if document == "README.md"}
    assert {"splits", "convert-llava-med", "doctor", "study", "train", "infer", "eval", "rater"} <= used


@pytest.mark.parametrize(("document", "line"), COMMANDS, ids=[f"{d}: {line}" for d, line in COMMANDS])
def test_each_documented_command_composes(document: str, line: str, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    words = shlex.split(line)
    while "=" in words[0]:  # an environment variable in front of the command
        name, value = words.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    assert words[0] == "sure-vqa"
    if "-m" in words:  # a multirun: its first job (Hydra prints one config at a time)
        words = [re.sub(r"^([^=]+=)([^,\[]+),.*$", r"\1\2", word) for word in words if word != "-m"]
    cli.main([*words[1:], "--cfg", "job"])
    composed = yaml.safe_load(capsys.readouterr().out)
    for override in words[1:]:
        if "=" in override and not override.startswith(("hydra", "-")):
            key, value = override.split("=", 1)
            node = composed
            for part in key.split("."):
                if isinstance(node, dict) and part in node:
                    node = node[part]
                else:  # a config group's choice (shift=..., judge=...), applied by composition
                    node = None
                    break
            if node is not None and not isinstance(node, dict) and "," not in value:  # a group choice; a sweep
                assert str(node) == value or yaml.safe_load(value) == node, (key, value, node)
