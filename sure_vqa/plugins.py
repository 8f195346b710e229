"""The registries' one discovery rule: every module of a registry's package is imported, and each registers
what it defines. Adding a method, corruption or metric is then one file, listed nowhere else."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def import_package_modules(package: str) -> None:
    """Imports each module of `package` once (a registration runs at import)."""
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
