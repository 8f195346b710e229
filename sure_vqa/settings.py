"""Settings as dataclasses: the only place a default lives, checked once into a frozen object.

Each stage (training, inference, evaluation), each fine-tuning method and each judge backend describes its
settings as a dataclass whose fields carry their default, their type and their range or choices (`setting`).
`register_configs` hands the defaults to Hydra's ConfigStore, so the YAML files under config/ only choose and
override, `--cfg job` shows every default and `--help` lists every setting. `checked` turns a composed config
node into the dataclass with the one-line messages of sure_vqa.config (exit code 2 through `run_entry`).

The ConfigStore nodes are plain data, not OmegaConf structured configs: a typed node would turn a YAML `1` for
a float field into `1.0`, which changes the resolved config written into every experiment folder and would make
folders trained before this version look as if they had been trained with other settings. `checked` does the
typing instead, with messages that name the setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from sure_vqa.config import ConfigError

T = TypeVar("T")


def setting(default: Any = dataclasses.MISSING, *, minimum: float | None = None, above: float | None = None,
            below: float | None = None, choices: Sequence[str] | Callable[[], Sequence[str]] | None = None,
            must_be: str | None = None, key: str | None = None, registry: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its checks: `minimum` (>=), `above` (>), `below` (<), `choices` (a list, or a
    function giving the registry's names at check time); `must_be` words the rule in messages when the range
    alone does not say it (e.g. "a number of seconds > 0"); `key` is the config key when it is not the field's
    name (a field that would shadow a property); `registry` (a function giving a sure_vqa.registry.Registry)
    makes the value the name of one of its entries, refused with the registry's own message."""
    metadata = {"minimum": minimum, "above": above, "below": below, "choices": choices, "must_be": must_be,
                "key": key, "registry": registry}
    if isinstance(default, list | dict):
        raise TypeError("a mutable default must be a tuple")
    return dataclasses.field(default=default, metadata=metadata)


def _optional(kind: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return (args[0] if len(args) == 1 else kind), len(args) < len(typing.get_args(kind))
    return kind, False


def _describe(kind: Any) -> str:
    if kind is bool:
        return "true or false"
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if typing.get_origin(kind) is tuple:
        return "a list"
    return "a text"  # (a nested dataclass has its own message in _convert)


def _convert(value: Any, kind: Any, key: str) -> Any:
    """A YAML or command-line value as the field's type; a wrong type names the setting."""
    bad = ConfigError(f"{key}={value!r} is not valid; it must be {_describe(kind)}")
    if kind is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
            raise bad
        return int(value)
    if kind is float:
        if isinstance(value, bool):
            raise bad
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad from None
    if typing.get_origin(kind) is tuple:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise bad
        item = typing.get_args(kind)[0]
        return tuple(_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):  # a nested block of settings
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}={value!r} is not valid; it must be a mapping of settings "
                              f"({', '.join(_key(f) for f in config_fields(kind))})")
        return checked(kind, value, key)
    if kind is str:
        if isinstance(value, Mapping) or (isinstance(value, Sequence) and not isinstance(value, str)):
            raise bad
        return str(value)
    return value  # Any: taken as given (a mapping of names, checked by its owner)


def _check_range(value: Any, field: dataclasses.Field, key: str) -> None:
    meta = field.metadata
    low, above, below = meta.get("minimum"), meta.get("above"), meta.get("below")
    wrong = ((low is not None and value < low) or (above is not None and value <= above)
             or (below is not None and value >= below))
    if not wrong:
        return
    if meta.get("must_be"):
        rule = meta["must_be"]
    elif low is not None and below is not None:
        rule = f"in [{low:g}, {below:g})"
    elif above is not None and below is not None:
        rule = f"in ({above:g}, {below:g})"
    elif low is not None:
        rule = f"{'an integer' if isinstance(value, int) else 'a number'} >= {low:g}"
    elif above is not None:
        rule = f"a number > {above:g}"
    else:
        rule = f"a number < {below:g}"
    raise ConfigError(f"{key}={value!r} is not valid; it must be {rule}")


def _check_choice(value: Any, field: dataclasses.Field, key: str) -> None:
    if field.metadata.get("registry") is not None:
        field.metadata["registry"]().get(value, key)
        return
    choices = field.metadata.get("choices")
    if choices is None:
        return
    valid = list(choices() if callable(choices) else choices)
    if value not in valid:
        why = f" ({field.metadata['must_be']})" if field.metadata.get("must_be") else ""
        raise ConfigError(f"{key}={value!r} is not valid; valid values: {', '.join(map(str, valid))}{why}")


def checked(cls: type[T], node: Mapping[str, Any] | None, prefix: str = "", only_own: bool = False) -> T:
    """`node` as a `cls`, every value typed and checked; then `cls.__post_init__` checks what spans fields.

    A key the dataclass lacks is an error naming the valid settings (a misspelt key is never ignored), unless
    `only_own`: then the node is a shared one (the global config) and only the dataclass's own keys are read.
    A missing key takes the dataclass default. Messages name `{prefix}.{key}`.
    """
    node = {} if node is None else node
    if not isinstance(node, Mapping):
        raise ConfigError(f"{prefix or 'the config'} must be a mapping of settings, got {node!r}")
    fields = {_key(f): f for f in config_fields(cls)}
    dotted = (prefix + ".") if prefix else ""
    if not only_own:
        unknown = sorted(str(k) for k in node if k not in fields)
        if unknown:
            valid = ", ".join(fields) if fields else "none"
            raise ConfigError(f"{dotted}{unknown[0]} is not a setting; valid settings: {valid}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in node:
            if field.default is dataclasses.MISSING:
                raise ConfigError(f"{dotted}{name} is not set; give {dotted}{name}=VALUE")
            continue
        key = f"{dotted}{name}"
        value = node[name]
        kind, optional = _optional(hints[field.name])
        if value is None:
            if not optional:
                shown = "" if field.default is dataclasses.MISSING else f" (default {field.default!r})"
                raise ConfigError(f"{key} is null; give a value{shown}")
            values[field.name] = None
            continue
        value = _convert(value, kind, key)
        if kind in (int, float):
            _check_range(value, field, key)
        _check_choice(value, field, key)
        values[field.name] = value
    return cls(**values)


def config_fields(cls: type) -> list[dataclasses.Field]:
    """The fields that are settings (a field marked `internal` is filled by code, e.g. a backend's options)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def _key(field: dataclasses.Field) -> str:
    return field.metadata.get("key") or field.name


def defaults(cls: type) -> dict[str, Any]:
    """The dataclass's defaults as plain data for the ConfigStore (tuples as lists; no default: `???`)."""
    out: dict[str, Any] = {}
    for field in config_fields(cls):
        value = field.default
        if value is dataclasses.MISSING:
            value = "???"
        out[_key(field)] = list(value) if isinstance(value, tuple) else value
    return out


def register_configs() -> None:
    """Puts every settings dataclass's defaults into Hydra's ConfigStore (again: a method or backend registered
    since the last call, e.g. in a test, gets its node). Called before any config is composed."""
    from hydra.core.config_store import ConfigStore

    from sure_vqa.evaluate.judge.registry import judge_defaults
    from sure_vqa.evaluate.settings import EvaluationOptions
    from sure_vqa.images.corruption_grid import GridSettings
    from sure_vqa.infer.settings import InferenceSettings
    from sure_vqa.models.methods import finetune_defaults
    from sure_vqa.rater.settings import RaterSettings
    from sure_vqa.train.settings import TrainSettings

    store = ConfigStore.instance()
    store.store(group="settings", name="train", node=defaults(TrainSettings))
    store.store(group="settings", name="inference", node=defaults(InferenceSettings))
    store.store(group="settings", name="evaluation", node=defaults(EvaluationOptions))
    store.store(group="settings", name="judge", node=judge_defaults())
    store.store(group="settings", name="rater", node=defaults(RaterSettings))
    store.store(group="settings", name="corruptions", node=defaults(GridSettings))
    store.store(group="finetune", name="default", node=finetune_defaults())


def default_values() -> dict[str, Any]:
    """Every default given by a settings dataclass, by its dotted config key (`train.epochs`, `finetune.ia3.
    target_modules`): a setting that a folder's older resolved config lacks is unchanged if it has this value."""
    from sure_vqa.models.methods import finetune_defaults
    from sure_vqa.train.settings import TrainSettings

    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk({"train": defaults(TrainSettings), "finetune": finetune_defaults()}, "")
    return flat
