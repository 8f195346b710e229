"""Settings shared by every entry point: paths from `.env`, start-up validation and the exit-code-2 contract.

A bad setting must stop the program before any heavy work, with one message that names the setting and what
would be valid, and exit code 2 (like argparse). Every check raises `ConfigError`; `run_entry` turns it into
that exit.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

EXIT_CONFIG_ERROR = 2
# The one config folder (Hydra's config groups); every entry point and `compose` read it.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

T = TypeVar("T")


class ConfigError(Exception):
    """A setting, file or field that is not valid. The message names it and says what is valid."""


class DataError(ConfigError):
    """Bad input data (a missing or unreadable image, a malformed dataset file): the message names the file."""


def load_env(dotenv_path: str | Path | None = None) -> Path | None:
    """Loads `.env` from the working directory (or the given file) without overriding the environment."""
    from dotenv import find_dotenv, load_dotenv

    path = Path(dotenv_path) if dotenv_path else Path(find_dotenv(usecwd=True) or "")
    if path and path.is_file():
        load_dotenv(path, override=False)
        return path
    return None


def is_unset(value: Any) -> bool:
    """A setting left empty: null, "", the string "null" (a CLI override) or OmegaConf's "???"."""
    return value in (None, "", "null", "???")


def require_path(value: Any, setting: str, env_var: str | None = None, must_exist: bool = True) -> Path:
    """A configured path that must be set (and usually exist); the error names the setting and the .env key."""
    where = f"{setting}" + (f" (set {env_var} in .env or the environment)" if env_var else "")
    if is_unset(value):
        raise ConfigError(f"{where} is not set; it must be a path")
    path = Path(str(value)).expanduser()
    if must_exist and not path.exists():
        raise ConfigError(f"{where} = {path} does not exist")
    return path


def check_flag(cfg: Mapping[str, Any], key: str) -> bool:
    """A true/false setting (absent: false); anything else names the key."""
    value = cfg.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not valid; it must be true or false")
    return value


# The floating-point types a model is loaded in; `auto` is decided by the device (models.loading.auto_dtype).
DTYPES = ("auto", "bfloat16", "float16", "float32")
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


def check_dtype(value: Any, setting: str = "dtype", allow_auto: bool = True) -> str:
    """One of DTYPES (aliases such as bf16 and fp32 accepted), as its canonical name."""
    name = _DTYPE_ALIASES.get(str(value), str(value))
    valid = DTYPES if allow_auto else DTYPES[1:]
    if name not in valid:
        raise ConfigError(f"{setting}={value!r} is not valid; valid values: {', '.join(valid)}")
    return name


def check_choice(value: Any, setting: str, valid: tuple[str, ...] | list[str]) -> str:
    if value not in valid:
        raise ConfigError(f"{setting}={value!r} is not valid; valid values: {', '.join(map(str, valid))}")
    return value


EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


def run_entry(fn: Callable[..., T]) -> Callable[..., T]:
    """Wraps an entry point so that what is not a bug ends in one line on stderr, never a traceback:
    a ConfigError (exit code 2); a stage stopped by SIGTERM/SIGINT after keeping its work (sure_vqa.graceful_stop,
    exit 128 + the signal); Ctrl-C anywhere else (130); a full disk or a folder that can't be written
    (sure_vqa.system_errors, exit 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from sure_vqa import graceful_stop, system_errors

        try:
            check_added_settings(args[0] if args else None)
            return fn(*args, **kwargs)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_CONFIG_ERROR)
        except graceful_stop.Stopped as stop:
            print(f"{stop}", file=sys.stderr, flush=True)
            graceful_stop.hand_over(stop)  # under submitit: requeue the job (it resumes from what was kept)
            sys.exit(stop.exit_code)
        except KeyboardInterrupt:
            print("error: interrupted (Ctrl-C) before this step kept anything; finished files are unchanged: rerun "
                  "the same command to continue", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as err:
            from omegaconf.errors import MissingMandatoryValue

            if isinstance(err, MissingMandatoryValue):  # a `???` setting of the config that nobody gave
                print(f"error: {err.full_key} is not set; give {err.full_key}=VALUE", file=sys.stderr)
                sys.exit(EXIT_CONFIG_ERROR)
            message = system_errors.describe(err)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            sys.exit(system_errors.EXIT_OS_ERROR)

    return wrapper


def check_added_settings(cfg: Any) -> None:
    """Inside a Hydra app: a `+key=value` override that adds a top-level key nobody reads is an error.

    Hydra's own error for a misspelt key suggests `+key=value`, which Hydra then accepts; the stage would ignore
    the setting and run with its default. Adding below an existing node stays allowed: some nodes are maps of
    names (inference's `corruption_probabilities`, the study's `stages`).
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra_cfg = HydraConfig.get()
    groups = set(hydra_cfg.runtime.choices)
    for override in OverridesParser.create().parse_overrides(list(hydra_cfg.overrides.task)):
        key = override.key_or_group
        if override.is_add() and not override.is_force_add() and "." not in key and "/" not in key \
                and key not in groups:
            known = ", ".join(sorted(str(k) for k in cfg if k != key)) if cfg is not None else ""
            raise ConfigError(f"{override.input_line} adds a setting {key!r} that {hydra_cfg.job.name} does not read "
                              f"(Hydra accepts any key with +); its settings are: {known}")


def run_hydra_app(app: Callable[[], Any]) -> None:
    """Runs a `@hydra.main` app so that an override Hydra refuses (an unknown key, a missing config group option,
    bad override syntax) exits 2 like every other bad setting, with Hydra's own message on one line.

    Hydra reports those itself and exits 1, the code of a crash; with HYDRA_FULL_ERROR set, its exceptions reach
    this wrapper instead (other errors then keep their full traceback).
    """
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        app()
    except (ConfigCompositionException, MissingConfigException, OverrideParseException) as err:
        message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        cause = err.__cause__
        if cause is not None and str(cause).strip():
            message += f" ({str(cause).splitlines()[0].strip()})"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)


def compose(config_name: str, overrides: Sequence[str] = (), what: str | None = None) -> Any:
    """A config from config/ as the entry scripts compose it, inside or outside a running Hydra app.

    With `what` (e.g. "study setting"), Hydra's and OmegaConf's errors become a ConfigError naming it.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sure_vqa.settings import register_configs

    register_configs()
    try:
        if GlobalHydra.instance().is_initialized():
            return hydra_compose(config_name=config_name, overrides=list(overrides))
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        if what is None:
            raise
        raise ConfigError(f"bad {what}: {err}") from None


def env_path(name: str) -> str | None:
    return os.environ.get(name) or None
