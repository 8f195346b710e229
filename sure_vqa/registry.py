"""One kind of registry for every kind of entry (datasets, methods, families, corruptions, metrics, judge and
generation backends), with one way of finding entries: every module of the entries' package is imported, and
each registers what it defines. Adding an entry is then one file, listed nowhere else.

An entry is a frozen dataclass that carries what is known about it (a method its folder settings, a backend its
settings class and checks); the registry only names, finds and lists them. Registries are consulted by naming,
the study and the report, so neither this module nor an entry's module imports torch at module level.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from functools import cache
from typing import Generic, Protocol, TypeVar

from sure_vqa.config import ConfigError


class Entry(Protocol):
    """What every entry has: the name it is chosen by, and one line that `sure-vqa ls` prints."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...


T = TypeVar("T", bound=Entry)


@cache
def import_package_modules(package: str) -> None:
    """Imports each module of `package` once (a registration runs at import)."""
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")


class Registry(Generic[T]):
    """The entries of one kind, by name.

    `kind` names the kind in messages ("fine-tuning method"); `package` holds one module per entry;
    `setting` is the config key that chooses an entry (`model_type`), named in the error for an unknown name;
    `check` (optional) refuses an entry that breaks a rule of its kind (a name written into folder names).
    """

    def __init__(self, kind: str, package: str, setting: str,
                 check: Callable[[T, dict[str, T]], None] | None = None) -> None:
        self.kind = kind
        self.package = package
        self.setting = setting
        self._check = check
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Adds (or, for the same name, replaces) an entry; returns it, so a module can keep it as a constant."""
        if self._check is not None:
            self._check(entry, {name: e for name, e in self._entries.items() if name != entry.name})
        self._entries[entry.name] = entry
        return entry

    def _load(self) -> None:
        import_package_modules(self.package)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[T]:
        """Every entry, by name."""
        self._load()
        return [self._entries[name] for name in sorted(self._entries)]

    def __iter__(self) -> Iterator[T]:
        return iter(self.entries())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def get(self, name: str, setting: str | None = None) -> T:
        """The entry called `name`; an unknown name is a ConfigError naming the setting and every valid name."""
        self._load()
        if name not in self._entries:
            raise ConfigError(f"{setting or self.setting}={name!r} is not a known {self.kind}; valid values: "
                              f"{', '.join(sorted(self._entries))}")
        return self._entries[name]

    @contextlib.contextmanager
    def temporarily(self, entry: T) -> Iterator[T]:
        """The entry registered (or replacing the one of its name) for a `with` block: a test's throwaway entry."""
        self._load()
        before = self._entries.get(entry.name)
        self.register(entry)
        try:
            yield entry
        finally:
            if before is None:
                self._entries.pop(entry.name, None)
            else:
                self._entries[entry.name] = before
