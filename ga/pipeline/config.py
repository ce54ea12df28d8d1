"""Validation of a pipeline config (config/*.yaml) against config/schema.yaml, with errors that name the key.

The Snakefile calls `validate_config` before any job runs. JSON Schema checks the shape (unknown keys, types,
missing values); a few rules that a schema cannot express (rank <= inter_size, random_config only with
source: random) are checked here afterwards.
"""
from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml


class ConfigError(ValueError):
    """A pipeline config that does not satisfy the schema; the message lists every offending key."""


def _key_path(path) -> str:
    return ".".join(str(part) for part in path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
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


def load_schema(schema_path: str | Path) -> dict:
    return yaml.safe_load(Path(schema_path).read_text())


def validate_config(config: dict, schema_path: str | Path, source: str = "config") -> None:
    """Raise ConfigError naming every bad key of `config`; `source` names the config in the message."""
    schema = load_schema(schema_path)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_describe(e) for e in errors]
    if not problems:
        problems = _semantic_problems(config)
    if problems:
        raise ConfigError(f"invalid pipeline config ({source}):\n  " + "\n  ".join(problems))


def _semantic_problems(config: dict) -> list[str]:
    from ga.config import GenerativeAdapterConfig  # light import: a dataclass, no torch

    problems = []
    try:
        GenerativeAdapterConfig.from_dict(config["adapter"])
    except ValueError as err:
        problems.append(f"adapter: {err}")
    from ga.data.settings import PretrainDataSettings  # light import: dataclasses, no polars/pandera

    try:
        PretrainDataSettings.from_dict(config["pretrain_data"], seed=config["seed"])
    except ValueError as err:  # e.g. more reconstruction than completion windows
        problems.append(str(err) if str(err).startswith("pretrain_data") else f"pretrain_data: {err}")
    if config["adapter"]["window"] != config["pretrain_data"]["window"]:
        problems.append(f"adapter.window ({config['adapter']['window']}) must equal pretrain_data.window "
                        f"({config['pretrain_data']['window']}): the generator encodes contexts in the windows it "
                        "was trained on")
    base = config["base_model"]
    if base["source"] == "random" and not base["random_config"]:
        problems.append("base_model.random_config: required (a dict of LlamaConfig fields) for source: random")
    if base["source"] != "random" and base["random_config"] is not None:
        problems.append(f"base_model.random_config: only used with source: random (source is "
                        f"{base['source']!r}); set it to null")
    return problems


def write_resolved_config(config: dict, path: str | Path) -> Path:
    """Write the validated config as YAML (atomically; untouched when the content is already the same)."""
    path = Path(path)
    text = yaml.safe_dump(config, sort_keys=False)
    if path.exists() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path
