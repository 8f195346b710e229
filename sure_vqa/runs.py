"""From a composed config to the checked identity of a run: the names and folders it reads and writes.

train.py, inference.py, run_eval.py, the study, the baselines, the rater study and the report locate a run from
the same settings (config/identity/: dataset, shift, train_split, model_type and its hyperparameters, seed,
no_image flags, corruption, image control). `ModelIdentity.from_config` and `TestRunIdentity.from_config` check
them once into one typed object; its methods compute every name through `naming`. The module-level functions
are shorthands for the callers that need one name.

This module is also the one shape of a run's identity in the other direction: `ModelIdentity.from_folder` and
`parse_run_name` read a folder's name back into the same types (the report scans folders with them), and
`InferenceSpec` (one inference run of a model: split, images shown, corruption) is what the study runs and the
report expects. The model kinds (fine-tuned, zero-shot, most frequent answer) are defined here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sure_vqa import naming
from sure_vqa.config import ConfigError, check_choice, check_flag, is_unset, require_path
from sure_vqa.models import methods

# The kinds of model a run belongs to: a fine-tuning method's model, the zero-shot model (model_type=pretrained)
# and the most-frequent-answer baseline (laid out like a model folder, docs/method.md#baselines-and-robustness).
FINETUNED, PRETRAINED, MOST_FREQUENT = "finetuned", methods.PRETRAINED, "most_frequent"
BASELINE_KINDS = (PRETRAINED, MOST_FREQUENT)
IMAGE, NO_IMAGE = "image", "no image"  # how a run shows the image (with the image controls: "blank image", ...)


@dataclass(frozen=True)
class CorruptionSetting:
    """One corruption setting of a run: (name, strength, probability) per corruption, in the registry's
    application order (sure_vqa.images.corruptions), as the run's folder name writes it."""

    entries: tuple[tuple[str, str, float], ...]

    @classmethod
    def from_maps(cls, probabilities: Mapping[str, Any], strengths: Mapping[str, Any]) -> CorruptionSetting:
        return cls(tuple((str(name), str(strengths[name]), float(p)) for name, p in probabilities.items()))

    @property
    def probabilities(self) -> dict[str, float]:
        return {name: p for name, _, p in self.entries}

    @property
    def strengths(self) -> dict[str, str]:
        return {name: strength for name, strength, _ in self.entries}

    def as_maps(self) -> tuple[dict[str, float], dict[str, str]]:
        """(probabilities, strengths): how the corruption stage and the inference fingerprint take them."""
        return self.probabilities, self.strengths

    @property
    def label(self) -> str:
        """`low` when every corruption has the same strength, else each one's; probabilities when not all 0.5."""
        levels = [strength for _, strength, _ in self.entries]
        label = levels[0] if len(set(levels)) == 1 else "/".join(f"{n}-{s}" for n, s, _ in self.entries)
        if any(p != 0.5 for _, _, p in self.entries):
            label += " (p " + "/".join(f"{p:g}" for _, _, p in self.entries) + ")"
        return label

    def sort_key(self) -> tuple[int, str]:
        """Weaker settings first (the sum of the strengths' ranks), then by label."""
        return sum(naming.STRENGTHS.index(s) for _, s, _ in self.entries), self.label


@dataclass(frozen=True)
class InferenceSpec:
    """One inference run of a model on one split: without the image, with an image control, or corrupted."""

    split: str
    no_image: bool = False
    image_control: str | None = None
    corruption: CorruptionSetting | None = None

    @property
    def condition(self) -> str:
        """How the image is shown: `image`, `no image`, `blank image` or `shuffled image`."""
        if self.no_image:
            return NO_IMAGE
        return f"{self.image_control} image" if self.image_control else IMAGE

    def values(self) -> dict[str, Any]:
        """The inference settings of this run (merged into the stage's config)."""
        values: dict[str, Any] = {"split": self.split, "no_image": self.no_image, "image_control": self.image_control,
                                  "corruption": self.corruption is not None}
        if self.corruption is not None:
            values["corruption_probabilities"], values["corruption_strength"] = self.corruption.as_maps()
        return values

    def run_name(self, test_split_name: str) -> str:
        """The eval folder's name of this run on a test split (`naming.eval_run_name`)."""
        return naming.eval_run_name(test_split_name, no_image=self.no_image,
                                    corruption=None if self.corruption is None else self.corruption.as_maps(),
                                    image_control=self.image_control)


def parse_run_name(name: str, shift_fields: Sequence[str] | None = None) -> tuple[dict[str, Any], InferenceSpec]:
    """An eval folder's name read back: (its test split's parts: dataset, mod, data_shift, ood_value as written
    in names, test_split_name; the run's spec). ValueError for a name `InferenceSpec.run_name` does not build."""
    from sure_vqa.data import registry as datasets

    fields = datasets.known_shift_fields() if shift_fields is None else shift_fields
    parsed = naming.parse_eval_run_name(name, fields)
    if parsed["no_image"] and parsed["image_control"]:
        raise ValueError(f"{name!r}: a run both without images and with an image control")
    corruption = parsed["corruption"]
    spec = InferenceSpec(parsed["split"], parsed["no_image"], parsed["image_control"],
                         None if corruption is None else CorruptionSetting.from_maps(corruption["probabilities"],
                                                                                      corruption["strengths"]))
    split = {key: parsed[key] for key in ("dataset", "mod", "data_shift", "ood_value", "test_split_name")}
    return split, spec


# The original code's flags, accepted beside model_type when they agree with it.
LEGACY_FLAGS = {"lora_enable": "lora", "ia3_enable": "ia3", "prompt_enable": "prompt"}


def resolve_model_type(cfg: Mapping[str, Any]) -> str:
    """model_type is the source of truth; the original's lora/ia3/prompt_enable flags are accepted if they agree."""
    model_type = check_choice(cfg.get("model_type"), "model_type", methods.model_types())
    for flag, method in LEGACY_FLAGS.items():
        value = cfg.get(flag)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise ConfigError(f"{flag}={value!r} is not valid; it must be true, false or left unset (null)")
        if value != (model_type == method):
            expected = "true" if model_type == method else "false"
            raise ConfigError(
                f"{flag}={str(value).lower()} contradicts model_type={model_type}; "
                f"set {flag}={expected} or leave it unset (it is derived from model_type)"
            )
    return model_type


def legacy_flags(model_type: str) -> dict[str, bool]:
    """The original code's flags, derived from model_type (written into the resolved config)."""
    return {flag: model_type == method for flag, method in LEGACY_FLAGS.items()}


def _get(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = cfg
    for key in dotted.split("."):
        if node is None or key not in node:
            return default
        node = node[key]
    return node


def shift_of(cfg: Mapping[str, Any], split: str) -> tuple[str | None, Any]:
    """(data_shift, ood_value) when the split needs them, else (None, None)."""
    if split in ("iid", "ood"):
        return cfg["data_shift"], cfg["ood_value"]
    return None, None


def learning_rate(cfg: Mapping[str, Any], model_type: str) -> float:
    """`finetune.lr`, or the method's default (docs/method.md#fine-tuning-defaults) when it is null."""
    return methods.shared_settings(_get(cfg, "finetune")).learning_rate(model_type)


def seed_of(cfg: Mapping[str, Any]) -> int:
    """The run's seed, an integer (`seed=abc` is a setting error, not a traceback)."""
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed={seed!r} is not valid; it must be an integer (the study uses 123, 124, 125)")
    return seed


# The settings that can name the base model, with their .env keys.
BASE_MODEL_ENV = {"base_model": "BASE_MODEL_PATH", "model_path": "LLAVA_MED_MODEL_PATH"}


def base_model_key(cfg: Mapping[str, Any]) -> str:
    """`base_model` when paths.base_model is set (it wins), else `model_path` (LLaVA-Med v1.5, the default)."""
    return "model_path" if is_unset(_get(cfg, "paths.base_model")) else "base_model"


def base_model_path(cfg: Mapping[str, Any]) -> Path:
    """The base model folder: `paths.base_model` (BASE_MODEL_PATH) when set, else `paths.model_path`
    (LLAVA_MED_MODEL_PATH, the default: LLaVA-Med v1.5 converted). Checked to be a transformers model folder."""
    key = base_model_key(cfg)
    setting = f"paths.{key}"
    from sure_vqa.models.folders import require_transformers_folder

    return require_transformers_folder(require_path(_get(cfg, setting), setting, BASE_MODEL_ENV[key]), setting)


def base_model_name(cfg: Mapping[str, Any]) -> str:
    """The base model's name in folder names (naming.base_model_name): `llava` unless paths.base_model is set."""
    general = _get(cfg, "paths.base_model") if base_model_key(cfg) == "base_model" else None
    try:
        return naming.base_model_name(None if general is None else str(general))
    except ValueError as err:
        raise ConfigError(f"paths.base_model: {err}") from None


def experiment_root(cfg: Mapping[str, Any], must_exist: bool = False) -> Path:
    return require_path(_get(cfg, "paths.experiment_root"), "paths.experiment_root", "EXPERIMENT_ROOT_DIR",
                        must_exist=must_exist)


def dataset_root(cfg: Mapping[str, Any]) -> Path:
    return require_path(_get(cfg, "paths.dataset_root"), "paths.dataset_root", "DATASET_ROOT_DIR")


def corruption_settings(cfg: Mapping[str, Any]) -> CorruptionSetting | None:
    """The corruption settings of a corrupted run, else None. The probabilities and strengths given are checked
    also with corruption=false, so a bad value never waits for someone to turn it on; every corruption needs
    both only when corruption=true."""
    enabled = cfg.get("corruption", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"corruption={enabled!r} is not valid; it must be true or false")
    checked = None
    if enabled or cfg.get("corruption_probabilities") is not None or cfg.get("corruption_strength") is not None:
        from sure_vqa.images import corruptions

        checked = corruptions.check_settings(cfg.get("corruption_probabilities"), cfg.get("corruption_strength"),
                                             complete=enabled)
    return CorruptionSetting.from_maps(*checked) if enabled else None


@dataclass(frozen=True)
class ModelIdentity:
    """What names a model's folder (docs/method.md#experiment-folders): checked once, then only read.

    `trained_without_images` is `no_image` while training and `train_no_image` at inference and evaluation.
    """

    dataset: str
    train_split: str
    data_shift: str | None
    ood_value: Any
    model_type: str
    seed: int
    learning_rate: float | None  # None for the zero-shot model
    folder_tags: tuple[str, ...]
    trained_without_images: bool
    experiment_root: Path | None
    explicit_dir: Path | None  # `experiment_dir=PATH`
    base_model: str = naming.DEFAULT_BASE_MODEL  # its name in folder names (`llava`: LLaVA-Med v1.5)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], training: bool = False) -> ModelIdentity:
        model_type = resolve_model_type(cfg)
        lr, tags = None, ()
        if model_type != PRETRAINED:
            method = methods.get(model_type)
            lr = learning_rate(cfg, model_type)
            tags = method.folder_tags(method.config_from(_get(cfg, "finetune") or {}))
        train_split = check_choice(cfg.get("train_split", "iid"), "train_split", naming.SPLITS)
        data_shift, ood_value = shift_of(cfg, train_split)
        explicit = cfg.get("experiment_dir")
        root = _get(cfg, "paths.experiment_root")
        return cls(
            dataset=str(cfg.get("dataset")), train_split=train_split, data_shift=data_shift, ood_value=ood_value,
            model_type=model_type, seed=seed_of(cfg), learning_rate=lr, folder_tags=tags,
            trained_without_images=check_flag(cfg, "no_image" if training else "train_no_image"),
            experiment_root=None if is_unset(root) else Path(str(root)).expanduser(),
            explicit_dir=Path(str(explicit)).expanduser() if explicit else None,
            base_model=base_model_name(cfg),
        )

    @classmethod
    def baseline(cls, kind: str, dataset: str, experiment_root: Path | None, train_split: str = "iid",
                 data_shift: str | None = None, ood_value: Any = None,
                 base_model: str = naming.DEFAULT_BASE_MODEL) -> ModelIdentity:
        """The zero-shot model of a base model (its folder depends on the dataset alone), or the most frequent
        answer learned on a train split (no base model); neither has a method, a seed or hyperparameters."""
        if kind == PRETRAINED:
            train_split, data_shift, ood_value = "iid", None, None
        else:
            base_model = naming.DEFAULT_BASE_MODEL
        return cls(dataset=dataset, train_split=train_split, data_shift=data_shift, ood_value=ood_value,
                   model_type=kind, seed=0, learning_rate=None, folder_tags=(), trained_without_images=False,
                   experiment_root=experiment_root, explicit_dir=None, base_model=base_model)

    @classmethod
    def most_frequent(cls, cfg: Mapping[str, Any]) -> ModelIdentity:
        """The most-frequent-answer baseline learned on the configured train split."""
        train_split = check_choice(cfg.get("train_split", "iid"), "train_split", naming.SPLITS)
        root = _get(cfg, "paths.experiment_root")
        return cls.baseline(MOST_FREQUENT, str(cfg.get("dataset")),
                            None if is_unset(root) else Path(str(root)).expanduser(), train_split,
                            *shift_of(cfg, train_split))

    @classmethod
    def from_folder(cls, path: Path, shift_fields: Sequence[str] | None = None) -> ModelIdentity:
        """A model folder read back from its name alone (the inverse of `model_dir`): a fine-tuned model's
        `{root}/{base}-{train split}-finetune_...`, the zero-shot model's `{root}/{dataset}/pretrained[-{base}]`,
        the baseline's `{root}/most_frequent-{train split}`. The ood value is as names write it (`LEG+HAND`).
        ValueError for another name. `shift_fields`: those to match first (default: the registered datasets')."""
        from sure_vqa.data import registry as datasets

        fields = datasets.known_shift_fields() if shift_fields is None else shift_fields
        path = Path(path)
        base_model = naming.parse_pretrained_dir_name(path.name)
        if base_model is not None:
            return cls.baseline(PRETRAINED, path.parent.name, path.parent.parent, base_model=base_model)
        if path.name.startswith(naming.MOST_FREQUENT_PREFIX):
            parsed = naming.parse_most_frequent_name(path.name, fields)
            return cls.baseline(MOST_FREQUENT, parsed["dataset"], path.parent, parsed["split"], parsed["data_shift"],
                                parsed["ood_value"])
        parsed = naming.parse_experiment_name(path.name, fields, datasets=datasets.names())
        if parsed["mod"] != "train":
            raise ValueError(f"{path.name!r}: the model's split {parsed['train_split_name']} is not a train split")
        return cls(dataset=parsed["dataset"], train_split=parsed["split"], data_shift=parsed["data_shift"],
                   ood_value=parsed["ood_value"], model_type=parsed["model_type"], seed=parsed["seed"],
                   learning_rate=parsed["lr"], folder_tags=parsed["hyperparameter_tags"],
                   trained_without_images=parsed["no_image"], experiment_root=path.parent, explicit_dir=None,
                   base_model=parsed["base_model"])

    @property
    def kind(self) -> str:
        """FINETUNED, PRETRAINED or MOST_FREQUENT."""
        return self.model_type if self.model_type in BASELINE_KINDS else FINETUNED

    def with_seed(self, seed: int) -> ModelIdentity:
        """The same method's model trained with another seed (where its folder would be)."""
        return dataclasses.replace(self, seed=seed, explicit_dir=None)

    def root(self) -> Path:
        """paths.experiment_root, which must be set once a folder is computed from it."""
        return require_path(self.experiment_root, "paths.experiment_root", "EXPERIMENT_ROOT_DIR", must_exist=False)

    def train_split_name(self, no_image: bool | None = None) -> str:
        """The split the model was (or is being) trained on; `no_image` defaults to how it was trained."""
        no_image = self.trained_without_images if no_image is None else no_image
        return naming.split_name(self.dataset, "train", self.train_split, self.data_shift, self.ood_value,
                                 no_image=no_image)

    def finetune_tag(self) -> str:
        return naming.finetune_tag(self.model_type, self.learning_rate, self.seed, self.folder_tags)

    def model_dir(self) -> Path:
        """The fine-tuned model's folder, or `{root}/{dataset}/pretrained[-{base model}]` for the zero-shot model."""
        if self.explicit_dir is not None:
            return self.explicit_dir
        if self.model_type == PRETRAINED:
            return naming.pretrained_dir(self.root(), self.dataset, self.base_model)
        if self.model_type == MOST_FREQUENT:
            return naming.most_frequent_dir(self.root(), self.train_split_name(no_image=False))
        return naming.experiment_dir(self.root(), naming.experiment_name(self.train_split_name(), self.finetune_tag(),
                                                                         self.base_model))


@dataclass(frozen=True)
class TestRunIdentity:
    """What names an inference run's eval folder: the model's identity, the test split, how images are shown."""

    model: ModelIdentity
    mod: str
    split: str
    data_shift: str | None
    ood_value: Any
    no_image: bool
    corruption: CorruptionSetting | None
    image_control: str | None
    explicit_dir: Path | None  # `eval_dir=PATH`

    @property
    def spec(self) -> InferenceSpec:
        return InferenceSpec(self.split, self.no_image, self.image_control, self.corruption)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TestRunIdentity:
        image_control = cfg.get("image_control")
        if image_control is not None and image_control not in naming.IMAGE_CONTROLS:
            raise ConfigError(f"image_control={image_control!r} is not valid; valid values: null, "
                              f"{', '.join(naming.IMAGE_CONTROLS)}")
        split = check_choice(cfg.get("split", "iid"), "split", naming.SPLITS)
        explicit = cfg.get("eval_dir")
        return cls(
            model=ModelIdentity.from_config(cfg), mod=check_choice(cfg.get("mod", "test"), "mod", naming.MODS),
            split=split, data_shift=shift_of(cfg, split)[0], ood_value=shift_of(cfg, split)[1],
            no_image=check_flag(cfg, "no_image"), corruption=corruption_settings(cfg), image_control=image_control,
            explicit_dir=Path(str(explicit)).expanduser() if explicit else None,
        )

    def test_split_name(self) -> str:
        return naming.split_name(self.model.dataset, self.mod, self.split, self.data_shift, self.ood_value)

    def run_name(self) -> str:
        return self.spec.run_name(self.test_split_name())

    def eval_dir(self) -> Path:
        """`eval_dir=PATH` wins; otherwise the folder that inference writes for these settings."""
        if self.explicit_dir is not None:
            return self.explicit_dir
        return naming.eval_dir(self.model.model_dir(), self.run_name())


# --- shorthands for one name ---------------------------------------------------------------------------


def train_split_name(cfg: Mapping[str, Any], no_image: bool | None = None) -> str:
    """The split the model was (or is being) trained on; no_image defaults to train_no_image/no_image."""
    split = cfg.get("train_split", "iid")
    if no_image is None:
        no_image = bool(cfg.get("train_no_image", cfg.get("no_image", False)))
    return naming.split_name(cfg["dataset"], "train", split, *shift_of(cfg, split), no_image=no_image)


def model_dir(cfg: Mapping[str, Any], training: bool = False) -> Path:
    return ModelIdentity.from_config(cfg, training=training).model_dir()


def eval_dir(cfg: Mapping[str, Any]) -> Path:
    """`eval_dir=PATH` wins (nothing else is read then); otherwise the folder inference writes."""
    explicit = cfg.get("eval_dir")
    if explicit:
        return Path(str(explicit)).expanduser()
    return TestRunIdentity.from_config(cfg).eval_dir()
