"""The run config: one YAML file per setting (config/*.yaml), composed of typed sections.

`RunConfig.load(path)` reads a config file, applies `key.path=value` overrides, checks it against the schema
(config/schema.yaml, generated from the section dataclasses by `ga schema`) and builds the sections. Every stage
(ga/stages/) takes a `RunConfig`; each rule's `params:` and each stage's fingerprint come from the sections'
`depends_on()` (ga/section.py).

Adding a section: a `ConfigSection` dataclass with `setting(...)` fields, one field here, then `ga schema >
config/schema.yaml`. Keys with defaults may be left out of config files.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from ga.base import BaseModelConfig
from ga.config import GenerativeAdapterConfig
from ga.data.config import PretrainDataConfig
from ga.data.sft.sections import SftDataConfig, SftSourcesSectionConfig, check_datasets
from ga.eval.icl.config import IclEvalConfig
from ga.eval.knowledge.config import KnowledgeEvalConfig
from ga.eval.msc.config import MscEvalConfig
from ga.io import read_yaml, write_yaml
from ga.layout import RunLayout
from ga.section import SCHEMA_DIALECT, ConfigError, ConfigSection, setting
from ga.train.config import FinetuneConfig, PretrainConfig

RUN_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
SCHEMA_HEADER = (
    "# JSON Schema of a run config (config/*.yaml), generated from the section dataclasses by\n"
    "# `ga schema > config/schema.yaml` (tests/test_config.py checks that it is up to date). Do not edit.\n"
)


@dataclass
class RunConfig(ConfigSection):
    """Generative Adapter pipeline configuration."""

    run_name: str = setting(
        doc="every output, log and benchmark timing goes under runs/{run_name}/, so configs with "
        "different run names never overwrite each other",
        pattern=RUN_NAME_PATTERN,
    )
    seed: int = setting(
        0, "seed of every random choice of the pipeline (random model init, data sampling, training)", minimum=0
    )
    base_model: BaseModelConfig = setting(
        default_factory=BaseModelConfig, doc="the frozen language model that the generator adapts"
    )
    adapter: GenerativeAdapterConfig = setting(
        default_factory=GenerativeAdapterConfig, doc="the generator's hyperparameters"
    )
    pretrain_data: PretrainDataConfig = setting(
        default_factory=PretrainDataConfig, doc="pretraining documents and their window layout"
    )
    pretrain: PretrainConfig = setting(default_factory=PretrainConfig, doc="pretraining the generator with DeepSpeed")
    sft_sources: SftSourcesSectionConfig = setting(
        default_factory=SftSourcesSectionConfig, doc="instruction-tuning datasets: sources, conversion, token limits"
    )
    sft_data: SftDataConfig = setting(
        default_factory=SftDataConfig, doc="instruction-tuning mixture and its context + conversation windows"
    )
    finetune: FinetuneConfig = setting(
        default_factory=FinetuneConfig, doc="instruction tuning the pretrained generator with DeepSpeed"
    )
    knowledge_eval: KnowledgeEvalConfig = setting(
        default_factory=KnowledgeEvalConfig,
        doc="knowledge acquisition by context length: benchmarks x lengths x methods",
    )
    icl_eval: IclEvalConfig = setting(
        default_factory=IclEvalConfig, doc="in-context learning: benchmarks x tasks x k x seeds x methods"
    )
    msc_eval: MscEvalConfig = setting(
        default_factory=MscEvalConfig, doc="personalization on multi-session chats: benchmarks x batches x methods"
    )

    section_doc: ClassVar[str] = "Generative Adapter pipeline configuration"

    def __post_init__(self) -> None:
        # The data stages seed their sampling with the run's seed (one seed per run, set once at the top level).
        for section in (self.pretrain_data, self.sft_data):
            if isinstance(section, ConfigSection):
                section.seed = self.seed
        if isinstance(self.sft_sources, SftSourcesSectionConfig) and isinstance(self.pretrain_data, ConfigSection):
            self.sft_sources.set_run_values(self.seed, self.pretrain_data.val_fraction)
        super().__post_init__()

    def check(self) -> None:
        if self.adapter.window != self.pretrain_data.window:
            raise ConfigError(
                f"adapter.window ({self.adapter.window}) must equal pretrain_data.window "
                f"({self.pretrain_data.window}): the generator encodes contexts in the windows it "
                "was trained on"
            )
        if self.sft_data.max_tokens < 2 * self.adapter.window:
            raise ConfigError(
                f"sft_data.max_tokens ({self.sft_data.max_tokens}) must hold at least two windows of "
                f"adapter.window ({self.adapter.window}) tokens: a context and a conversation window"
            )
        check_datasets(self.sft_data.datasets, self.sft_sources.source_names())
        if self.pretrain_data.source == "embedded":  # the generated QA must ask about the corpus's own entities
            for name in self.sft_data.datasets:
                block = getattr(self.sft_sources, name)
                if hasattr(block, "entities") and block.entities != self.pretrain_data.embedded.entities:
                    raise ConfigError(
                        f"sft_sources.{name}.entities ({block.entities}) must equal "
                        f"pretrain_data.embedded.entities ({self.pretrain_data.embedded.entities}): "
                        "its records ask about the pretraining corpus's fictional entities"
                    )

    # ------------------------------------------------------------------ files
    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> RunConfig:
        """Read, override (`key.path=value`, values in YAML), check and build; errors name the file and key."""
        path = Path(path)
        try:
            values = read_yaml(path)
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(str(err)) from None
        values = apply_overrides(values, overrides or [])
        return cls.from_values(values, source=str(path))

    @classmethod
    def from_values(cls, values: dict, source: str = "config") -> RunConfig:
        """Check a parsed config against the schema (every bad key at once), then build it."""
        problems = schema_problems(values)
        if not problems:
            try:
                return cls.from_dict(values)
            except ConfigError as err:
                problems = [str(err)]
        raise ConfigError(f"invalid run config ({source}):\n  " + "\n  ".join(problems))

    def save(self, path: str | Path) -> Path:
        """Write the resolved config (every value, defaults included); untouched when already identical."""
        return write_yaml(self.to_dict(), path, only_if_changed=True)

    def to_dict(self) -> dict:
        """The values a config file can hold (fields set by the program are left out)."""
        return _schema_keys_only(super().to_dict(), self.json_schema())

    @property
    def layout(self) -> RunLayout:
        """Where this run's files go (runs/{run_name}/; ga/layout.py)."""
        return RunLayout.of(self.run_name)

    @classmethod
    def schema(cls) -> dict:
        return {"$schema": SCHEMA_DIALECT, **cls.json_schema()}


def _schema_keys_only(values: Any, schema: dict) -> Any:
    """`values` without the keys its schema does not list (program-set `internal` fields), at every depth."""
    properties = schema.get("properties")
    if not isinstance(values, dict) or properties is None:
        return values
    return {key: _schema_keys_only(value, properties[key]) for key, value in values.items() if key in properties}


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """A copy of `values` with each `dotted.key=value` set (value parsed as YAML; parents must exist)."""
    values = copy.deepcopy(values)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r}: expected key.path=value")
        *parents, last = key.split(".")
        node: Any = values
        for depth, part in enumerate(parents):
            if not isinstance(node, dict):
                raise ConfigError(f"override {override!r}: {'.'.join(parents[:depth])} is not a section")
            node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {'.'.join(parents)} is not a section")
        try:
            node[last] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {override!r}: the value is not YAML ({err})") from None
    return values


def schema_problems(values: Any) -> list[str]:
    """Every place where `values` breaks the generated schema, one line each, naming the dotted key."""
    import jsonschema

    schema = RunConfig.schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.absolute_path)))
    return [_describe(error) for error in errors]


def _key_path(path) -> str:
    return ".".join(str(part) for part in path) or "<top level>"


def _describe(error) -> str:
    where = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(_key_path(where + [key]) for key in unexpected)
        return f"{keys}: unknown key (allowed here: {', '.join(allowed)})"
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return f"{_key_path(where + [missing])}: missing (required)"
    return f"{_key_path(where)}: {error.message}"


def schema_yaml() -> str:
    """config/schema.yaml's text."""
    return SCHEMA_HEADER + yaml.safe_dump(RunConfig.schema(), sort_keys=False, width=118)
