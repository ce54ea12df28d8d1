"""What every evaluation family shares: its section's checks, its method registry, and opening the models.

A family (knowledge QA, in-context learning, personalization) is one folder `ga/eval/<family>/` of the same files
(docs/evaluation-families.md): `config.py` (its config section, an `EvalSection`), `methods.py` (its methods and
ONE registry table, a `MethodRegistry` of `MethodEntry`s), `sources.py`, `jobs.py` and `results.py`. The stages
(`ga/stages/<family>_*.py`) and the rules (`rules/*.smk`) read the registry for a method's own settings, the model
files its jobs need as rule inputs and its cluster resources, so that adding a method is one class plus one line.

Light on purpose: the config sections import it, and reading a run config must not import the work code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ga.resources import Resources
from ga.section import ConfigError, ConfigSection, setting


def no_settings(config, job: Mapping[str, str]) -> dict:
    """A method that reads no setting of its own."""
    return {}


@dataclass(frozen=True)
class MethodEntry:
    """One method of a family, as the pipeline sees it."""

    name: str
    """The method's name in the config (`<section>.methods`), the rules' `method` wildcard and the results."""
    build: Callable[..., Any]
    """`build(cfg, models, **job)` -> the `ga.eval.methods.Method`: cfg is the family's section, models the
    `OpenedModels`, job the family's per-job extras (a builder takes the ones it reads and ignores the rest)."""
    jobs: str
    """What its jobs are, for people: the doc of its key in `<section>.resources`."""
    settings: Callable[[Any, Mapping[str, str]], dict] = no_settings
    """`settings(config, job)` -> the config values this method's jobs depend on beyond the family's shared ones
    (config: the run config; job: the job's wildcards); they end the job's params."""
    inputs: tuple[str, ...] = ()
    """The optional stage inputs (model files: the generator, a trained LoRA, ...) its jobs need; each is a rule
    input of those jobs only."""

    @property
    def reads_generator(self) -> bool:
        return "generator" in self.inputs


class MethodRegistry:
    """A family's methods in order (the order of its default `methods` list)."""

    def __init__(self, family: str, *entries: MethodEntry):
        names = [entry.name for entry in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"{family}: method names must be distinct, got {names}")
        self.family = family
        self._entries = {entry.name: entry for entry in entries}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __iter__(self) -> Iterator[MethodEntry]:
        return iter(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> MethodEntry:
        entry = self._entries.get(name)
        if entry is None:
            raise ValueError(f"unknown method {name!r} of {self.family}; choose one of {list(self._entries)}")
        return entry

    def optional_inputs(self) -> tuple[str, ...]:
        """Every optional input some method needs, in order of first use (a stage's `optional`)."""
        return tuple(dict.fromkeys(name for entry in self for name in entry.inputs))

    def resources_section(
        self, doc: str = "Cluster resources of each method's evaluation jobs (nothing here changes a result)."
    ) -> type[ConfigSection]:
        """The `<section>.resources` section: one `Resources` per method, in registry order, each documented by
        its entry's `jobs`; `doc`: the section's doc."""
        fields = [(entry.name, Resources, setting(default_factory=Resources, doc=entry.jobs)) for entry in self]
        section = dataclasses.make_dataclass(
            f"{self.family.title().replace('_', '')}MethodResources", fields, bases=(ConfigSection,)
        )
        section.__doc__ = doc
        section.__module__ = __name__
        return section


def check_names(key: str, values: list[str], allowed: tuple[str, ...]) -> None:
    """`values` (a section's `benchmarks` or `methods`) are distinct names among `allowed`."""
    unknown = [value for value in values if value not in allowed]
    if unknown or len(set(values)) != len(values):
        raise ConfigError(f"{key}: must be distinct names among {list(allowed)}, got {values!r}")


def check_method_inputs(section: str, entry: MethodEntry, inputs) -> None:
    """A job of `entry` was given every model file it needs (`inputs`: the stage's input namespace)."""
    for name in entry.inputs:
        if getattr(inputs, name) is None:
            flag = name.replace("_", "-")
            raise ConfigError(f"{section}: method {entry.name} needs --{flag} (its {name} input)")


@dataclass
class OpenedModels:
    """The models one evaluation job reads: the base model and its tokenizer on the evaluation device, and the
    generator around that base model for a method that reads it (else None)."""

    base_model: Any
    tokenizer: Any
    generator: Any = None


def open_models(config, base_model_dir, resources: Resources, generator_dir=None) -> OpenedModels:
    """Limit torch to the job's cores (`resources.threads`), load the base model (`config.base_model`'s dtype and
    attention) on the evaluation device, and the generator from `generator_dir` when given."""
    from ga.base import load_base
    from ga.eval.device import evaluation_device, limit_threads

    limit_threads(resources.threads)
    base = config.base_model
    base_model, tokenizer = load_base(
        base_model_dir, dtype=base.dtype, attn_implementation=base.attn_implementation, device=evaluation_device()
    )
    generator = None
    if generator_dir is not None:
        from ga.model import GenerativeAdapter

        generator = GenerativeAdapter.from_pretrained(generator_dir, base_model=base_model)
    return OpenedModels(base_model, tokenizer, generator)
