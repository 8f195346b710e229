"""The entry points as real processes: `python train.py ...` (or any script of the project root) offline, with its
Hydra folder where the test says, and the environment every such test gives it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def offline_env(drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """This process's environment, offline (no model hub), without the variables in `drop`, `extra` on top."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           **extra}
    return {key: value for key, value in env.items() if key not in drop}


def script_command(script: str, *overrides: str, hydra_dir: Path, read_only_root: bool = False) -> list[str]:
    """`python <script> overrides... hydra.run.dir=<hydra_dir>`; `read_only_root` drops root's right to write into
    read-only folders, so that a read-only experiment root is refused as for anyone else."""
    command = [sys.executable, script, *overrides, f"hydra.run.dir={hydra_dir}"]
    if read_only_root and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return command


def run_script(script: str, *overrides: str, hydra_dir: Path, read_only_root: bool = False,
               env: dict[str, str] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs an entry script from the project root and returns it finished (stdout and stderr captured)."""
    return subprocess.run(script_command(script, *overrides, hydra_dir=hydra_dir, read_only_root=read_only_root),
                          cwd=PROJECT_ROOT, env=env or offline_env(), capture_output=True, text=True, timeout=timeout)
