"""python -m sure_vqa.report [experiment_root=PATH] [out=PATH] [key=value ...] (config/study/report.yaml)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from sure_vqa.config import CONFIG_DIR, ConfigError, load_env, run_entry

REPORT_CONFIG = CONFIG_DIR / "study" / "report.yaml"


def load_config(overrides: Sequence[str]):
    """config/study/report.yaml with `key=value` overrides; an unknown key or bad value is a ConfigError."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    base = OmegaConf.load(REPORT_CONFIG)
    OmegaConf.set_struct(base, True)
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"{override!r} is not key=value; e.g. experiment_root=/path out=/path")
    try:
        cfg = OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(f"bad report setting: {err}; valid keys: {', '.join(base.keys())}") from None
    return cfg


@run_entry
def main(argv: Sequence[str]) -> None:
    from sure_vqa.study.report.build import build_report, settings_from_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_env()
    cfg = load_config(argv)
    if cfg.experiment_root in (None, ""):
        raise ConfigError("experiment_root is not set; pass experiment_root=PATH or set EXPERIMENT_ROOT_DIR")
    files = build_report(cfg.experiment_root, cfg.out, settings_from_config(cfg), dataset_root=cfg.dataset_root)
    print(files.html)


if __name__ == "__main__":
    main(sys.argv[1:])
