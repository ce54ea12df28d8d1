"""Adapter files for users: made from context files by `make_adapter`, used later by `open_adapter`, which loads the
generator and base model they were made with and checks that everything fits.

An adapter file is an `AdapterState` file (the d_r x d_r sums, the rank-r LoRA factors, the generator's config) whose
`origin` records what identifies the things it was made from, and no local path unless asked (`record_paths`; an
adapter is meant to be shared, and a path tells others how the maker's disk is laid out):

    generator_sha256                  the hash of the generator's weights, checked on every use: a generator retrained
                                      in place would silently change the adapter's answers
    generator                         the generator folder (only with `record_paths`)
    base_model_name                   the base model's model-hub id, or its folder's name
    base_model                        what the base model was loaded from: a model-hub id always, a model folder only
                                      with `record_paths`
    base_model_revision               the hub revision, if any
    base_model_sha256                 hash of the base model's weights in the adapted modules (what the delta is
                                      added to), so that a different base model under the same name is caught
    contexts, tokens, window          the files read (name, bytes, tokens, sha256; `file`, the path, only with
                                      `record_paths`), all tokens, the window length

Adapters of format `ga adapt/1` recorded every path; they load as before.

The base model of a generator, when none is given: the pipeline run's own `base_model/` folder when the generator
sits in a run (`runs/<run>/{pretrain,finetune}/generator`), else the model its config records: a folder, the embedded
SmolLM2 (its hub id), or a model-hub id.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import ga
from ga.errors import UnreadableFile, UsageError
from ga.layout import RunLayout

if TYPE_CHECKING:
    from ga.model import GenerativeAdapter
    from ga.state import AdapterState

EMBEDDED = "embedded"
"""`--base-model embedded`: the embedded SmolLM2-135M-Instruct (ga.smollm2)."""
ORIGIN_FORMAT = "ga adapt/2"
SAFETENSORS_LENGTH_BYTES = 8
"""A safetensors file starts with its JSON header's length, a little-endian 64-bit integer."""
SAFETENSORS_MAX_HEADER_BYTES = 100_000_000
"""The longest header safetensors accepts: a longer length field means the file is not a safetensors file."""
TRUNCATED = "truncated"
GENERATOR_REMEDY = "copy or train the generator again"
ADAPTER_REMEDY = "copy it again or make it again with `ga adapt`"


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
    from ga.smollm2 import EMBEDDED as EMBEDDED_SPEC
    from ga.smollm2 import embedded_model_dir

    check_generator_dir(generator_dir)
    if given == EMBEDDED:
        return BaseModelSource(str(embedded_model_dir()))
    if given is not None:
        return BaseModelSource(str(Path(given).absolute()) if Path(given).exists() else given)
    recorded = read_json(generator_dir / GENERATOR_CONFIG)["adapter"]
    recorded_id, revision = recorded.get("base_model_id"), recorded.get("base_model_revision")
    run_base = RunLayout.of_generator(generator_dir).base_model  # a pipeline run's generator: its run's base model
    if (run_base / BASE_INFO_FILE).is_file() and read_json(run_base / BASE_INFO_FILE).get("id") in (
        recorded_id,
        Path(recorded_id or "").name,
    ):
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
            raise UnreadableFile(
                f"{generator_dir}: not a generator folder (no {name}; a generator is "
                "runs/<run>/finetune/generator or any GenerativeAdapter.save_pretrained folder)"
            )


def check_safetensors(path: Path, remedy: str) -> None:
    """An `UnreadableFile` naming `path`, saying what is wrong and then `remedy`, unless safetensors can open it (its
    header is read, and the file must be as long as the header says)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt"):
            pass
    except SafetensorError:
        raise UnreadableFile(f"{path}: {safetensors_problem(path) or 'not readable'}; {remedy}") from None


def check_not_truncated(path: Path, remedy: str) -> None:
    """An `UnreadableFile` naming `path` if it is a safetensors file cut short (a copy or download that did not
    finish), so that this, not a consequence of it, is what the user reads."""
    problem = safetensors_problem(path)
    if problem is not None and problem.startswith(TRUNCATED):
        raise UnreadableFile(f"{path}: {problem}; {remedy}")


def load_generator(generator_dir: str | Path, base: BaseModelSource, device: str = "cpu"):
    """(GenerativeAdapter, tokenizer): the generator in `generator_dir` on the base model `base`; a generator trained
    for another base model raises `UsageError` naming both."""
    from transformers.utils import logging as transformers_logging

    from ga.base import load_base
    from ga.model import GENERATOR_WEIGHTS

    generator_dir = Path(generator_dir)
    check_generator_dir(generator_dir)
    check_safetensors(generator_dir / GENERATOR_WEIGHTS, GENERATOR_REMEDY)
    transformers_logging.disable_progress_bar()  # a bar per model load would bury the answer and the error lines
    base_model, tokenizer = load_base(base.name_or_path, revision=base.revision, device=device)
    try:
        gam = ga.GenerativeAdapter.from_pretrained(generator_dir, base_model=base_model)
    except ValueError as err:
        raise UsageError(
            f"generator {generator_dir} does not fit base model {base.name_or_path}: {str(err).split(': ', 1)[-1]}"
        ) from None
    return gam, tokenizer


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with `path` as a safetensors file, in words: truncated (shorter than its header says; a copy or
    download cut short) or not a safetensors file at all; None when its header and length look right."""
    import json

    size = path.stat().st_size
    with open(path, "rb") as handle:
        length_field = handle.read(SAFETENSORS_LENGTH_BYTES)
        header_bytes = int.from_bytes(length_field, "little")
        if len(length_field) < SAFETENSORS_LENGTH_BYTES or header_bytes > SAFETENSORS_MAX_HEADER_BYTES:
            return f"not a safetensors file ({size} bytes)"
        header = handle.read(header_bytes)
    if len(header) < header_bytes:
        return (
            f"{TRUNCATED}: {size} bytes, shorter than its own header ({SAFETENSORS_LENGTH_BYTES + header_bytes} bytes)"
            if header.startswith(b"{")
            else f"not a safetensors file ({size} bytes)"
        )
    try:
        tensors = json.loads(header)
        data_bytes = max(
            (entry["data_offsets"][1] for name, entry in tensors.items() if name != "__metadata__"), default=0
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return "not a safetensors file (its header is not valid)"
    expected = SAFETENSORS_LENGTH_BYTES + header_bytes + data_bytes
    if size < expected:
        return f"{TRUNCATED}: {size} bytes of the {expected} its header announces"
    return None


def base_weights_sha256(gam: GenerativeAdapter) -> str:
    """Hash of the base model's weights in the adapted modules (float32 bytes, in module order)."""
    modules = dict(gam.base_model.named_modules())
    digest = hashlib.sha256()
    for name in gam.module_names:
        digest.update(name.encode())
        digest.update(modules[name].weight.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def make_adapter(
    gam: GenerativeAdapter,
    tokenizer,
    files: Sequence[str | Path],
    generator_dir: str | Path,
    base: BaseModelSource,
    window: int | None = None,
    block_chars: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    record_paths: bool = False,
) -> AdapterState:
    """The adapter of `files` read as one context (ga.app.context): one `update` per window of `window` tokens
    (default: the generator's), with its origin recorded (local paths only with `record_paths`; see the module doc).
    Memory stays bounded whatever the files' length."""
    import torch

    from ga.app.context import READ_BLOCK_CHARS, ContextTokenizer, check_context_file, windows
    from ga.format import ContextFormat
    from ga.io import sha256_file
    from ga.model import GENERATOR_WEIGHTS

    contexts = [check_context_file(path) for path in files]
    reader = ContextTokenizer(ContextFormat.from_tokenizer(tokenizer), block_chars or READ_BLOCK_CHARS)
    window = gam.config.window if window is None else window
    if window < 1:
        raise UsageError(f"window {window}: must be at least 1 token")
    pieces = (ids for context in contexts for ids in reader.file_ids(context, on_bytes))
    state = gam.empty_state()
    for window_ids in windows(pieces, window):
        state = gam.update(state, torch.tensor([window_ids]))
    base_is_folder = is_local_path(base.name_or_path)
    if not record_paths and state.config.base_model_id and is_local_path(state.config.base_model_id):
        # the generator's config names its base model by the path it was trained from
        state.config = dataclasses.replace(state.config, base_model_id=Path(state.config.base_model_id).name)
    state.origin = {
        "format": ORIGIN_FORMAT,
        **({"generator": str(Path(generator_dir).absolute())} if record_paths else {}),
        "generator_sha256": sha256_file(Path(generator_dir) / GENERATOR_WEIGHTS),
        "base_model_name": Path(base.name_or_path).name if base_is_folder else base.name_or_path,
        **({"base_model": base.name_or_path} if record_paths or not base_is_folder else {}),
        "base_model_revision": base.revision,
        "base_model_sha256": base_weights_sha256(gam),
        "contexts": [context.record(with_path=record_paths) for context in contexts],
        "tokens": state.num_tokens,
        "window": window,
        "ga_version": ga.__version__,
    }
    return state


def is_local_path(name_or_path: str) -> bool:
    """Whether a base model's name is a path on this machine (else a model-hub id)."""
    return Path(name_or_path).is_absolute() or Path(name_or_path).exists()


def readapt_command(adapter: str | Path, state: AdapterState, generator_dir: str | Path) -> str:
    """The `ga adapt` command that makes the adapter in `adapter` again, from the files its origin records, with the
    generator in `generator_dir` (files recorded by name only are named so: run it where they are)."""
    import shlex

    origin = state.origin or {}
    files = [context.get("file") or context.get("name") for context in origin.get("contexts", [])]
    words = ["ga", "adapt", "--generator", str(generator_dir), "--context", *(files or ["FILE..."])]
    if origin.get("base_model"):
        words += ["--base-model", origin["base_model"]]
    if origin.get("window") not in (None, state.config.window):
        words += ["--window", str(origin["window"])]
    if origin.get("generator"):
        words.append("--record-paths")
    words += ["--out", str(adapter), "--force"]
    return shlex.join(words)


def check_generator_weights(adapter: str | Path, state: AdapterState, generator_dir: Path) -> None:
    """A `UsageError` unless the generator in `generator_dir` has the weights the adapter was made with (when it
    records their hash): a generator retrained or replaced in place would silently change every answer."""
    from ga.io import sha256_file
    from ga.model import GENERATOR_WEIGHTS

    recorded = (state.origin or {}).get("generator_sha256")
    weights = generator_dir / GENERATOR_WEIGHTS
    if not recorded or sha256_file(weights) == recorded:
        return
    check_not_truncated(weights, GENERATOR_REMEDY)
    raise UsageError(
        f"{adapter} was made with another generator: {weights} holds other weights now (sha256 "
        f"{recorded[:12]} then, {sha256_file(weights)[:12]} now: retrained or replaced since); make it "
        f"again with this generator: {readapt_command(adapter, state, generator_dir)}"
    )


def read_adapter(path: str | Path) -> AdapterState:
    """The adapter state in `path`; a missing file or one that is not an adapter raises one error naming it."""
    from safetensors import SafetensorError

    from ga.state import AdapterState

    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"{path}: does not exist" if not path.exists() else f"{path}: not a file")
    try:
        return AdapterState.load(path)
    except SafetensorError as err:
        check_not_truncated(path, ADAPTER_REMEDY)
        raise UsageError(f"{path}: not an adapter file made by `ga adapt` ({str(err).split(': ', 1)[-1]})") from None
    except (ValueError, KeyError, OSError) as err:
        raise UsageError(f"{path}: not an adapter file made by `ga adapt` ({str(err).split(': ', 1)[-1]})") from None


def open_adapter(
    path: str | Path, generator: str | Path | None = None, base_model: str | None = None, device: str = "cpu"
):
    """(GenerativeAdapter, tokenizer, AdapterState) to use the adapter in `path`: its generator and base model as
    recorded, or `generator` / `base_model` instead (a generator moved since, the same model from another place; an
    adapter that records no paths needs `generator`), checked against what the adapter was made with, the generator's
    weights included, on every use."""
    state = read_adapter(path)
    origin = state.origin or {}
    generator_dir = Path(generator) if generator is not None else origin.get("generator")
    if generator_dir is None:
        raise UsageError(
            f"{path}: records no generator location ("
            + ("made without --record-paths" if origin.get("format") else "not made by `ga adapt`")
            + "); pass --generator DIR, the generator it was made with"
        )
    generator_dir = Path(generator_dir)
    if not generator_dir.is_dir():
        raise UnreadableFile(
            f"{generator_dir}: generator folder does not exist"
            + (f" (recorded in {path}); pass --generator DIR" if generator is None else "")
        )
    check_generator_dir(generator_dir)
    check_generator_weights(path, state, generator_dir)
    if base_model is not None:
        base = base_model_for(generator_dir, base_model)
    elif origin.get("base_model"):
        base = BaseModelSource(origin["base_model"], origin.get("base_model_revision"))
    else:
        base = base_model_for(generator_dir, None)
    gam, tokenizer = load_generator(generator_dir, base, device)
    recorded = origin.get("base_model_sha256")
    if recorded and base_weights_sha256(gam) != recorded:
        made_on = origin.get("base_model") or origin.get("base_model_name")
        raise UsageError(
            f"{path} was made on another base model ({made_on}) than {base.name_or_path}: their weights "
            "differ in the adapted modules; pass --base-model, the one it was made on"
        )
    try:
        gam.check_state(state)
    except ValueError as err:
        raise UsageError(f"{path}: does not fit generator {generator_dir}: {err}") from None
    return gam, tokenizer, state
