"""`sure-vqa ls [kind ...]`: what the registries and the config groups hold, one line each, from the entries
themselves (a new method, dataset or backend shows up here without being listed anywhere)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from omegaconf import OmegaConf

from sure_vqa.config import CONFIG_DIR, EXIT_CONFIG_ERROR


def _entries(registry_module: str) -> list[tuple[str, str]]:
    import importlib

    registry = importlib.import_module(registry_module).REGISTRY
    return [(entry.name, entry.description) for entry in registry]


def _datasets() -> list[tuple[str, str]]:
    """The registered datasets, then the folders of DATASET_ROOT_DIR (.env or the environment) that a dataset.yaml
    describes."""
    from pathlib import Path

    from sure_vqa.config import env_path, load_env
    from sure_vqa.data import registry
    from sure_vqa.data.description import DESCRIPTION_FILE, read_description

    rows = [(entry.name, entry.description) for entry in registry.REGISTRY]
    load_env()
    root = env_path("DATASET_ROOT_DIR")
    for path in sorted(Path(root).expanduser().glob(f"*/{DESCRIPTION_FILE}")) if root else []:
        try:
            description = read_description(path).description or "(no description)"
        except Exception as err:  # noqa: BLE001 - one bad file is listed with its error, not fatal to `ls`
            description = f"not valid: {str(err).splitlines()[0]}"
        rows.append((path.parent.name, f"{description} ({path})"))
    return rows


def _shifts() -> list[tuple[str, str]]:
    rows = []
    for path in sorted((CONFIG_DIR / "shift").glob("*.yaml")):
        shift = OmegaConf.load(path)
        ood = shift.ood_value if isinstance(shift.ood_value, str) else ", ".join(map(str, shift.ood_value))
        rows.append((path.stem, f"{shift.dataset}: {shift.data_shift} = {ood} is ood"))
    return rows


def _judges() -> list[tuple[str, str]]:
    from sure_vqa.config import compose

    rows = []
    for path in sorted((CONFIG_DIR / "judge").glob("*.yaml")):
        composed = compose(f"judge/{path.stem}")
        judge = composed.judge if "judge" in composed else composed  # a group's config lands under its package
        rows.append((path.stem, f"{judge.model} through the {judge.backend} backend (config/judge/{path.name})"))
    return rows


def _metrics() -> list[tuple[str, str]]:
    from sure_vqa.evaluate.metrics import registry

    return [(m.name, f"{m.description}{' (extra: extra_metrics=[' + m.name + '])' if m.extra else ''}")
            for m in registry.all_metrics()]


def _corruptions() -> list[tuple[str, str]]:
    from sure_vqa.images import corruptions

    return [(name, corruptions.get(name).description) for name in corruptions.names()]


KINDS: dict[str, tuple[str, Callable[[], list[tuple[str, str]]]]] = {
    "datasets": ("dataset=", _datasets),
    "shifts": ("shift= (study) / grid.shifts", _shifts),
    "families": ("the base model's config model_type", lambda: _entries("sure_vqa.models.families")),
    "methods": ("model_type=", lambda: _entries("sure_vqa.models.methods")),
    "metrics": ("open questions; closed: accuracy", _metrics),
    "judges": ("judge=", _judges),
    "judge_backends": ("judge.backend=", lambda: _entries("sure_vqa.evaluate.judge.backends")),
    "generation_backends": ("backend= (inference)", lambda: _entries("sure_vqa.infer.generation")),
    "corruptions": ("corruption_probabilities.<name> / corruption_strength.<name>", _corruptions),
}


def listing(kinds: Sequence[str] = ()) -> str:
    """The entries of the given kinds (all when none), each kind under a heading that says how it is chosen."""
    blocks = []
    for kind in kinds or KINDS:
        chosen_by, rows = KINDS[kind][0], KINDS[kind][1]()
        width = max((len(name) for name, _ in rows), default=0)
        blocks.append("\n".join([f"{kind} ({chosen_by}):", *(f"  {name.ljust(width)}  {text}" for name, text in rows)]))
    return "\n\n".join(blocks)


def list_command(args: Sequence[str]) -> None:
    usage = f"usage: sure-vqa ls [{'|'.join(KINDS)} ...]"
    if any(arg in ("-h", "--help") for arg in args):
        print(usage)
        return
    unknown = [kind for kind in args if kind not in KINDS]
    if unknown:
        print(f"error: {unknown[0]!r} is not a kind of entry; {usage}", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
    print(listing(args))
