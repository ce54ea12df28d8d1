"""Adapter files for users: made from context files by `make_adapter`, used later by `open_adapter`, which loads the
generator and base model they were made with and checks that everything fits.

An adapter file is an `AdapterState` file (the d_r x d_r sums, the rank-r LoRA factors, the generator's config) whose
`origin` records:

    generator, generator_sha256       the generator folder and the hash of its weights
    base_model, base_model_revision   what the base model was loaded from (a model folder or a model-hub id)
    base_model_sha256                 hash of the base model's weights in the adapted modules (what the delta is
                                      added to), so that a different base model under the same name is caught
    contexts, tokens, window          the files read (path, bytes, tokens, sha256), all tokens, the window length

The base model of a generator, when none is given: the pipeline run's own `base_model/` folder when the generator
sits in a run (`runs/<run>/{pretrain,finetune}/generator`), else the model its config records: a folder, the embedded
SmolLM2 (its hub id), or a model-hub id.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ga
from ga.errors import UnreadableFile, UsageError

if TYPE_CHECKING:
    from ga.model import GenerativeAdapter
    from ga.state import AdapterState

EMBEDDED = "embedded"
"""`--base-model embedded`: the embedded SmolLM2-135M-Instruct (ga.smollm2)."""
RUN_BASE_MODEL = "base_model"
"""A pipeline run's base model folder, beside its `pretrain/` and `finetune/` folders (rules/*.smk)."""
ORIGIN_FORMAT = "ga adapt/1"


@dataclass
class BaseModelSource:
    """Where a base model is loaded from: a model folder or a model-hub id, and a hub revision."""

    name_or_path: str
    revision: str | None = None


def base_model_for(generator_dir: Path, given: str | None) -> BaseModelSource:
    """The base model to use with the generator in `generator_dir` (`given` wins; see the module doc)."""
    from ga.base import BASE_INFO_FILE
    from ga.io import read_json
    from ga.model import GENERATOR_CONFIG
    from ga.smollm2 import EMBEDDED as EMBEDDED_SPEC, embedded_model_dir

    check_generator_dir(generator_dir)
    if given == EMBEDDED:
        return BaseModelSource(str(embedded_model_dir()))
    if given is not None:
        return BaseModelSource(str(Path(given).absolute()) if Path(given).exists() else given)
    recorded = read_json(generator_dir / GENERATOR_CONFIG)["adapter"]
    recorded_id, revision = recorded.get("base_model_id"), recorded.get("base_model_revision")
    run_base = generator_dir.absolute().parent.parent / RUN_BASE_MODEL
    if (run_base / BASE_INFO_FILE).is_file() and read_json(run_base / BASE_INFO_FILE).get("id") in (
            recorded_id, Path(recorded_id or "").name):
        return BaseModelSource(str(run_base))
    if recorded_id and Path(recorded_id).is_dir():
        return BaseModelSource(str(Path(recorded_id).absolute()))
    if recorded_id is None or recorded_id == EMBEDDED_SPEC.hub_id:
        return BaseModelSource(str(embedded_model_dir()))
    return BaseModelSource(recorded_id, revision)


def check_generator_dir(generator_dir: str | Path) -> None:
    """An `UnreadableFile` naming `generator_dir` unless it holds a saved generator."""
    from ga.model import GENERATOR_CONFIG, GENERATOR_WEIGHTS

    generator_dir = Path(generator_dir)
    if not generator_dir.is_dir():
        raise UnreadableFile(f"{generator_dir}: generator folder does not exist")
    for name in (GENERATOR_CONFIG, GENERATOR_WEIGHTS):
        if not (generator_dir / name).is_file():
            raise UnreadableFile(f"{generator_dir}: not a generator folder (no {name}; a generator is "
                                 "runs/<run>/finetune/generator or any GenerativeAdapter.save_pretrained folder)")


def load_generator(generator_dir: str | Path, base: BaseModelSource, device: str = "cpu"):
    """(GenerativeAdapter, tokenizer): the generator in `generator_dir` on the base model `base`; a generator trained
    for another base model raises `UsageError` naming both."""
    from ga.base import load_base

    from transformers.utils import logging as transformers_logging

    generator_dir = Path(generator_dir)
    check_generator_dir(generator_dir)
    transformers_logging.disable_progress_bar()  # a bar per model load would bury the answer and the error lines
    base_model, tokenizer = load_base(base.name_or_path, revision=base.revision, device=device)
    try:
        gam = ga.GenerativeAdapter.from_pretrained(generator_dir, base_model=base_model)
    except ValueError as err:
        raise UsageError(f"generator {generator_dir} does not fit base model {base.name_or_path}: "
                         f"{str(err).split(': ', 1)[-1]}") from None
    return gam, tokenizer


def base_weights_sha256(gam: GenerativeAdapter) -> str:
    """Hash of the base model's weights in the adapted modules (float32 bytes, in module order)."""
    modules = dict(gam.base_model.named_modules())
    digest = hashlib.sha256()
    for name in gam.module_names:
        digest.update(name.encode())
        digest.update(modules[name].weight.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def make_adapter(gam: GenerativeAdapter, tokenizer, files: Sequence[str | Path], generator_dir: str | Path,
                 base: BaseModelSource, window: int | None = None, block_chars: int | None = None,
                 on_bytes: Callable[[int], None] | None = None) -> AdapterState:
    """The adapter of `files` read as one context (ga.app.context): one `update` per window of `window` tokens
    (default: the generator's), with its origin recorded. Memory stays bounded whatever the files' length."""
    import torch

    from ga.app.context import READ_BLOCK_CHARS, ContextTokenizer, check_context_file, windows
    from ga.format import ContextFormat
    from ga.io import sha256_file
    from ga.model import GENERATOR_WEIGHTS

    contexts = [check_context_file(path) for path in files]
    reader = ContextTokenizer(ContextFormat.from_tokenizer(tokenizer), block_chars or READ_BLOCK_CHARS)
    window = window or gam.config.window
    pieces = (ids for context in contexts for ids in reader.file_ids(context, on_bytes))
    state = gam.empty_state()
    for window_ids in windows(pieces, window):
        state = gam.update(state, torch.tensor([window_ids]))
    state.origin = {
        "format": ORIGIN_FORMAT,
        "generator": str(Path(generator_dir).absolute()),
        "generator_sha256": sha256_file(Path(generator_dir) / GENERATOR_WEIGHTS),
        "base_model": base.name_or_path,
        "base_model_revision": base.revision,
        "base_model_sha256": base_weights_sha256(gam),
        "contexts": [context.record() for context in contexts],
        "tokens": state.num_tokens,
        "window": window,
        "ga_version": ga.__version__,
    }
    return state


def read_adapter(path: str | Path) -> AdapterState:
    """The adapter state in `path`; a missing file or one that is not an adapter raises one error naming it."""
    from safetensors import SafetensorError

    from ga.state import AdapterState

    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"{path}: does not exist" if not path.exists() else f"{path}: not a file")
    try:
        return AdapterState.load(path)
    except (SafetensorError, ValueError, KeyError, OSError) as err:
        raise UsageError(f"{path}: not an adapter file made by `ga adapt` ({str(err).split(': ', 1)[-1]})") from None


def open_adapter(path: str | Path, generator: str | Path | None = None, base_model: str | None = None,
                 device: str = "cpu"):
    """(GenerativeAdapter, tokenizer, AdapterState) to use the adapter in `path`: its generator and base model as
    recorded, or `generator` / `base_model` instead (a generator moved since, the same model from another place),
    checked against what the adapter was made with."""
    state = read_adapter(path)
    origin = state.origin or {}
    generator_dir = Path(generator) if generator is not None else origin.get("generator")
    if generator_dir is None:
        raise UsageError(f"{path}: records no generator (not made by `ga adapt`); pass --generator DIR")
    generator_dir = Path(generator_dir)
    if not generator_dir.is_dir():
        raise UnreadableFile(f"{generator_dir}: generator folder does not exist"
                             + (f" (recorded in {path}); pass --generator DIR" if generator is None else ""))
    if generator is not None and origin.get("generator_sha256"):
        from ga.io import sha256_file
        from ga.model import GENERATOR_WEIGHTS

        weights = generator_dir / GENERATOR_WEIGHTS
        if weights.is_file() and sha256_file(weights) != origin["generator_sha256"]:
            raise UsageError(f"{path} was made with another generator ({origin.get('generator')}, weights sha256 "
                             f"{origin['generator_sha256'][:12]}) than {generator_dir}")
    if base_model is not None:
        base = base_model_for(generator_dir, base_model)
    elif origin.get("base_model"):
        base = BaseModelSource(origin["base_model"], origin.get("base_model_revision"))
    else:
        base = base_model_for(generator_dir, None)
    gam, tokenizer = load_generator(generator_dir, base, device)
    recorded = origin.get("base_model_sha256")
    if recorded and base_weights_sha256(gam) != recorded:
        raise UsageError(f"{path} was made on another base model ({origin.get('base_model')}) than "
                         f"{base.name_or_path}: their weights differ in the adapted modules")
    try:
        gam.check_state(state)
    except ValueError as err:
        raise UsageError(f"{path}: does not fit generator {generator_dir}: {err}") from None
    return gam, tokenizer, state
