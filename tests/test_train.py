"""Training loop on a real DeepSpeed engine (CPU, gloo): ZeRO 0 and 2, generator-only checkpoints, frozen base model,
loss decrease on the smoke config, non-finite step skipping, the pretraining objective's validation controls."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_models import VOCAB, tiny_base

import ga
from ga.labels import IGNORE_INDEX
from ga.model import GENERATOR_WEIGHTS
from ga.run_config import RunConfig
from ga.section import ConfigError
from ga.testing.train_data import synthetic_pretrain_set
from ga.train import FinetuneConfig, PretrainConfig, PretrainObjective, TrainConfig
from ga.train.checkpoint import GENERATOR_DIR, completed_checkpoints
from ga.train.config import GENERATOR_PARTS
from ga.train.loop import export_generator, train
from ga.train.objective import ALL_LABELS, MODEL_INPUT_KEYS, NO_PART, part_sums, stack_examples

REPO = Path(__file__).resolve().parents[1]
N_COMPLETION, WINDOW = 2, 16


def tiny_gam(seed: int = 0) -> ga.GenerativeAdapter:
    torch.manual_seed(seed)
    return ga.GenerativeAdapter(
        tiny_base("llama", seed=seed), ga.GenerativeAdapterConfig(inter_size=16, rank=4, alpha=16, window=WINDOW)
    )


def tiny_config(stage: int, **overrides) -> TrainConfig:
    values = dict(
        steps=4,
        micro_batch_size=2,
        grad_accum_steps=2,
        lr=1e-2,
        warmup_steps=1,
        checkpoint_every=2,
        eval_every=2,
        num_threads=1,
        gradient_checkpointing=True,
        deepspeed_config=str(REPO / f"resources/deepspeed/zero{stage}.json"),
    )
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def examples():
    return synthetic_pretrain_set(24, N_COMPLETION, WINDOW, VOCAB, seed=0)


def read_metrics(state_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (state_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 2])
def test_engine_trains_only_the_generator(stage, examples, tmp_path):
    model = tiny_gam()
    base_before = {k: v.clone() for k, v in model.base_model.state_dict().items()}
    generator_before = {k: v.clone() for k, v in model.generators.state_dict().items()}
    result = train(
        model, PretrainObjective(N_COMPLETION), examples[:20], examples[20:], tiny_config(stage), tmp_path, seed=0
    )

    assert result["zero_stage"] == stage and result["step"] == 4 and result["skipped_steps"] == 0
    assert result["trainable_parameters"] == sum(p.numel() for p in model.generator_parameters())
    # no gradient reaches the base model, and its weights are untouched; the generator moved
    for name, param in model.base_model.named_parameters():
        assert not param.requires_grad and param.grad is None, name
    for key, value in model.base_model.state_dict().items():
        assert torch.equal(value, base_before[key]), key
    moved = [k for k, v in model.generators.state_dict().items() if not torch.equal(v, generator_before[k])]
    assert moved, "no generator parameter changed"

    rows = read_metrics(tmp_path)
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for row in train_rows:
        for key in (
            "loss",
            "completion_loss",
            "reconstruction_loss",
            "first_window_loss",
            "lr",
            "grad_norm",
            "tokens_per_s",
            "step_time_s",
            "mem_gib",
        ):
            assert row[key] is not None and math.isfinite(row[key]), (key, row)
    assert [r["step"] for r in rows if r["kind"] == "val"] == [2, 4]
    for variant in ("own", "none", "other"):
        for part in ("completion", "reconstruction", "first_window"):
            assert math.isfinite(result[f"{variant}_{part}_ppl"])
    # window 0 has no adapter in any variant
    assert result["own_first_window_ppl"] == pytest.approx(result["none_first_window_ppl"], rel=1e-5)
    assert result["other_first_window_ppl"] == pytest.approx(result["none_first_window_ppl"], rel=1e-5)

    # checkpoints: generator weights only, as a save_pretrained folder equal to the trained generator
    steps = [step for step, _ in completed_checkpoints(tmp_path)]
    assert steps == [2, 4]
    checkpoint = tmp_path / "checkpoints" / "step-00000004"
    trained = model.generators.state_dict()
    weights = load_file(str(checkpoint / GENERATOR_DIR / GENERATOR_WEIGHTS))
    assert set(weights) == set(trained)
    for name, value in trained.items():
        assert torch.equal(weights[name], value.float()), name
    # the checkpoint's generator folder and the exported generator both load as the trained generator
    export_generator(model, tmp_path / "export", result["zero_stage"])
    for folder in (checkpoint / GENERATOR_DIR, tmp_path / "export"):
        loaded = ga.GenerativeAdapter.from_pretrained(folder, base_model=tiny_base("llama", seed=0))
        for name, value in loaded.generators.state_dict().items():
            assert torch.equal(value, trained[name]), (folder, name)
    generator_names = {name for name, p in model.named_parameters() if p.requires_grad}
    engine_files = list((checkpoint / "deepspeed").rglob("*model_states.pt"))
    assert engine_files
    module_state = torch.load(engine_files[0], map_location="cpu", weights_only=False)["module"]
    assert set(module_state) <= generator_names, "the engine checkpoint holds base model weights"


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 2])
def test_lr_multipliers_scale_each_parts_step(stage, examples, tmp_path):
    """One AdamW step from B = 0: only B has a gradient, so its largest move is lr x its factor (Adam's first
    step is lr per element), and every other matrix only decays, by exactly lr x its factor x weight_decay."""
    lr, weight_decay = 1e-2, 0.1
    factors = {"B": 4.0, "A1": 3.0, "A2": 0.5}
    model = tiny_gam()
    before = {k: v.clone() for k, v in model.generators.state_dict().items()}
    cfg = tiny_config(
        stage,
        steps=1,
        micro_batch_size=1,
        grad_accum_steps=1,
        lr=lr,
        warmup_steps=0,
        eval_every=0,
        weight_decay=weight_decay,
        grad_clip=0.0,
        lr_multipliers=factors,
    )
    train(model, PretrainObjective(N_COMPLETION), examples[:4], examples[4:6], cfg, tmp_path, seed=0)
    after = model.generators.state_dict()
    for name, value in after.items():
        part = name.rsplit(".", 1)[-1]
        step = lr * factors.get(part, 1.0)
        moved = value - before[name]
        if part == "B":
            assert moved.abs().max().item() == pytest.approx(step, rel=1e-3), name
        elif part == "norm_weight":  # no gradient and no decay
            assert torch.equal(value, before[name]), name
        else:
            # tolerances: fp32 rounding of p * (1 - lr * weight_decay) - p
            torch.testing.assert_close(moved, -step * weight_decay * before[name], rtol=2e-3, atol=5e-8)


def test_lr_multipliers_name_generator_parts():
    assert {part for part, _ in tiny_gam().generator_parameters_by_part()} == set(GENERATOR_PARTS)
    with pytest.raises(ConfigError, match=r"lr_multipliers\.A4: not a generator part"):
        TrainConfig(lr_multipliers={"A4": 2.0})
    with pytest.raises(ConfigError, match=r"lr_multipliers\.B: must be > 0"):
        TrainConfig(lr_multipliers={"B": 0.0})


@pytest.mark.slow
def test_zero_stages_agree(examples, tmp_path):
    """ZeRO-2's partitioned optimizer and ZeRO-3's partitioned parameters compute the same updates as the plain
    optimizer (one process)."""
    results = {}
    for stage in (0, 2, 3):
        model = tiny_gam()
        train(
            model,
            PretrainObjective(N_COMPLETION),
            examples[:20],
            examples[20:],
            tiny_config(stage, eval_every=0),
            tmp_path / f"zero{stage}",
            seed=0,
        )
        # the checkpoint holds full fp32 values (ZeRO-3 leaves only partitions in the module), and so does the export
        results[stage] = load_file(
            str(tmp_path / f"zero{stage}" / "checkpoints" / "step-00000004" / GENERATOR_DIR / GENERATOR_WEIGHTS)
        )
        export_generator(model, tmp_path / f"export{stage}", stage)
        exported = load_file(str(tmp_path / f"export{stage}" / GENERATOR_WEIGHTS))
        assert set(exported) == set(results[stage])
        assert all(torch.equal(exported[name], value) for name, value in results[stage].items()), stage
    # ZeRO-3 sums gradients in a different order (partitioned reduce-scatter): fp32 rounding, amplified a little by
    # Adam's normalisation over 4 steps at lr 1e-2, stays below 1e-5.
    for stage, atol in ((2, 1e-6), (3, 2e-5)):
        for key in results[0]:
            torch.testing.assert_close(results[stage][key], results[0][key], atol=atol, rtol=1e-4)


@pytest.mark.slow
def test_loss_decreases_on_smoke_config(tmp_path):
    """The smoke config's model, adapter and pretraining settings lower the loss of the examples they train on."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = RunConfig.load(REPO / "config" / "smoke.yaml").to_dict()  # resolved: keys left at their defaults too
    data_section = config.get("pretrain_data", {})
    n_completion = data_section.get("completion_windows", 2)
    n_reconstruction = data_section.get("reconstruction_windows", n_completion)
    window = data_section.get("window", config["adapter"]["window"])
    cfg = PretrainConfig.from_dict(config["pretrain"])
    cfg.deepspeed_config = str(REPO / cfg.deepspeed_config)
    torch.manual_seed(config["seed"])
    base = LlamaForCausalLM(LlamaConfig(**config["base_model"]["random_config"]))
    model = ga.GenerativeAdapter(base, ga.GenerativeAdapterConfig.from_dict(config["adapter"]))
    examples = synthetic_pretrain_set(
        12, n_completion, window, base.config.vocab_size, seed=0, reconstruction_windows=n_reconstruction
    )
    objective = PretrainObjective(n_completion)
    trained_on = objective.collate(examples[:8])

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(model(**{k: trained_on[k] for k in MODEL_INPUT_KEYS}).loss)

    before = loss()
    train(model, objective, examples[:8], examples[8:], cfg, tmp_path, seed=config["seed"])
    after = loss()
    rows = [r for r in read_metrics(tmp_path) if r["kind"] == "train"]
    assert len(rows) == cfg.steps
    assert after < before - 1e-3, (before, after)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 2])
@pytest.mark.parametrize("poisoned", [("layers__1__", ".B"), ("layers__0__", ".A2")])
def test_non_finite_steps_are_skipped_then_stop_the_run(stage, poisoned, examples, tmp_path):
    """A NaN in the last layer's output side gives a NaN loss; in the first layer's key projection, a NaN context
    state that the SVD refuses. Both skip the step (counted) and too many stop the run."""
    model = tiny_gam()
    with torch.no_grad():
        layer, suffix = poisoned
        [param] = [p for name, p in model.named_parameters() if layer in name and name.endswith(suffix)]
        param.fill_(float("nan"))
    with pytest.raises(RuntimeError, match="max_skipped_steps=2"):
        train(
            model,
            PretrainObjective(N_COMPLETION),
            examples[:20],
            examples[20:],
            tiny_config(stage, steps=6, max_skipped_steps=2, eval_every=0),
            tmp_path,
            seed=0,
        )
    rows = read_metrics(tmp_path)
    assert [(r["step"], r["skipped"], r["skipped_total"]) for r in rows] == [(1, True, 1), (2, True, 2)]


@pytest.mark.slow
def test_changed_config_starts_afresh(examples, tmp_path, capsys):
    cfg = tiny_config(0, eval_every=0)
    train(
        tiny_gam(),
        PretrainObjective(N_COMPLETION),
        examples[:20],
        examples[20:],
        cfg,
        tmp_path,
        seed=0,
        fingerprint={"lr": 1},
    )
    capsys.readouterr()
    train(
        tiny_gam(),
        PretrainObjective(N_COMPLETION),
        examples[:20],
        examples[20:],
        cfg,
        tmp_path,
        seed=0,
        fingerprint={"lr": 2},
    )
    out = capsys.readouterr().out
    assert "different configuration; starting afresh" in out and "resumed" not in out
    assert [r["step"] for r in read_metrics(tmp_path) if r["kind"] == "train"] == [1, 2, 3, 4]


class LastWindowObjective:
    """A stand-in for a new objective (instruction tuning's shape): context windows carry no loss, the last window
    is the one scored part, adapted by all windows before it."""

    part_names = ("answer",)
    donor_variants = ()

    def collate(self, examples):
        batch = stack_examples(examples, MODEL_INPUT_KEYS)
        batch["labels"][:, :-1] = IGNORE_INDEX
        n_windows = batch["input_ids"].shape[1]
        batch["adapter_prefix"] = torch.full_like(batch["adapter_prefix"], n_windows - 1)
        batch["window_part"] = torch.full(batch["adapter_prefix"].shape, NO_PART, dtype=torch.long)
        batch["window_part"][:, -1] = 0
        return batch

    def validation_variants(self, batch, donor):
        return [("own", batch), ("none", dict(batch, adapter_prefix=torch.zeros_like(batch["adapter_prefix"])))]


@pytest.mark.slow
def test_a_new_objective_plugs_into_the_loop_unchanged(examples, tmp_path):
    result = train(
        tiny_gam(), LastWindowObjective(), examples[:20], examples[20:], tiny_config(0, eval_every=0), tmp_path, seed=0
    )
    train_rows = [r for r in read_metrics(tmp_path) if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for row in train_rows:
        # only the last window is labelled, so the total loss is the answer loss
        assert math.isfinite(row["answer_loss"]) and row["loss"] == pytest.approx(row["answer_loss"], rel=1e-12)
        assert "completion_loss" not in row
    assert {key for key in result if key.endswith("_ppl")} == {"own_answer_ppl", "none_answer_ppl"}


def test_validation_variants_keep_targets_and_swap_the_adapter_source(examples):
    objective = PretrainObjective(N_COMPLETION)
    batch, donor = objective.collate(examples[:2]), objective.collate(examples[2:4])
    variants = objective.validation_variants(batch, donor)
    assert [name for name, _ in variants] == ["own", "none", "other", "other"]
    n = N_COMPLETION
    none, other_recon, other_completion = variants[1][1], variants[2][1], variants[3][1]
    assert torch.equal(none["adapter_prefix"], torch.zeros_like(batch["adapter_prefix"]))
    assert torch.equal(none["labels"], batch["labels"])
    # reconstruction: same targets, same prefixes, donor text in the adapter's source windows, which score nothing
    assert torch.equal(other_recon["input_ids"][:, n:], batch["input_ids"][:, n:])
    assert torch.equal(other_recon["labels"][:, n:], batch["labels"][:, n:])
    assert torch.equal(other_recon["adapter_prefix"], batch["adapter_prefix"])
    assert torch.equal(other_recon["input_ids"][:, :n], donor["input_ids"][:, :n])
    assert (other_recon["labels"][:, :n] == IGNORE_INDEX).all() and (other_recon["window_part"][:, :n] == NO_PART).all()
    # completion: our completion windows scored, each adapted by as many donor windows as in training
    assert torch.equal(other_completion["input_ids"][:, n:], batch["input_ids"][:, :n])
    assert torch.equal(other_completion["labels"][:, n:], batch["labels"][:, :n])
    assert torch.equal(other_completion["input_ids"][:, :n], donor["input_ids"][:, :n])
    assert torch.equal(other_completion["adapter_prefix"][:, n:], batch["adapter_prefix"][:, :n])
    assert torch.equal(other_completion["window_part"][:, n:], batch["window_part"][:, :n])
    assert not torch.equal(batch["input_ids"][:, :n], donor["input_ids"][:, :n])


def test_other_context_control_with_itself_as_donor_equals_own(examples):
    """With a sequence as its own donor the control must reproduce the own-context losses exactly."""
    model = tiny_gam()
    with torch.no_grad():  # a non-zero delta, so the adapter matters
        for generator in model.generators.values():
            for param in generator.parameters():
                if param.ndim == 2 and not param.any():
                    param.normal_(std=0.5)
    model.eval()
    objective = PretrainObjective(N_COMPLETION)
    batch = objective.collate(examples[:2])
    totals = {}
    with torch.no_grad():
        for name, variant in objective.validation_variants(batch, batch):
            out = model(**{k: variant[k] for k in MODEL_INPUT_KEYS})
            n_parts = len(objective.part_names)
            nll, tokens = part_sums(out.window_losses, out.window_token_counts, variant["window_part"], n_parts)
            acc = totals.setdefault(name, torch.zeros(2, n_parts, dtype=torch.float64))
            acc[0] += nll
            acc[1] += tokens
    torch.testing.assert_close(totals["other"], totals["own"], atol=1e-5, rtol=1e-6)
    assert not torch.allclose(totals["none"][0], totals["own"][0]), "the adapter had no effect"


def test_window_zero_is_reported_apart_from_the_adapted_completion_windows(examples):
    objective = PretrainObjective(N_COMPLETION)
    batch = objective.collate(examples[:2])
    parts = [objective.part_names[p] for p in batch["window_part"][0].tolist()]
    assert parts == ["first_window"] + ["completion"] * (N_COMPLETION - 1) + ["reconstruction"] * N_COMPLETION
    assert (batch["adapter_prefix"][batch["window_part"] == objective.part_names.index("first_window")] == 0).all()
    assert (batch["adapter_prefix"][batch["window_part"] != objective.part_names.index("first_window")] > 0).all()
    assert torch.equal(batch["labels"], batch[ALL_LABELS])  # both parts trained: no label dropped


@pytest.mark.parametrize("loss_parts", [("completion",), ("reconstruction",)])
def test_loss_parts_drop_training_labels_and_validation_scores_every_part(examples, loss_parts):
    n = N_COMPLETION
    full_objective, objective = PretrainObjective(n), PretrainObjective(n, loss_parts)
    full, batch = full_objective.collate(examples[:2]), objective.collate(examples[:2])
    # the completion objective covers window 0 too (it has no adapter, so it carries no gradient either way)
    trained, dropped = (
        (slice(None, n), slice(n, None)) if loss_parts == ("completion",) else (slice(n, None), slice(None, n))
    )
    assert (full["labels"][:, dropped] != IGNORE_INDEX).any()
    assert (batch["labels"][:, dropped] == IGNORE_INDEX).all()
    assert torch.equal(batch["labels"][:, trained], full["labels"][:, trained])
    assert torch.equal(batch[ALL_LABELS], full["labels"])
    variants = objective.validation_variants(batch, objective.collate(examples[2:4]))
    full_variants = full_objective.validation_variants(full, full_objective.collate(examples[2:4]))
    assert [name for name, _ in variants] == [name for name, _ in full_variants]
    for (name, variant), (_, full_variant) in zip(variants, full_variants):
        for key in (*MODEL_INPUT_KEYS, "window_part"):
            assert torch.equal(variant[key], full_variant[key]), (name, key)


def with_nonzero_delta(model: ga.GenerativeAdapter) -> ga.GenerativeAdapter:
    """Non-zero output sides (B), so the adapter changes the model and every generator weight gets a gradient."""
    torch.manual_seed(1)
    with torch.no_grad():
        for generator in model.generators.values():
            for param in generator.parameters():
                if param.ndim == 2 and not param.any():
                    param.normal_(std=0.5)
    return model


def test_completion_only_trains_as_the_layout_without_reconstruction_windows():
    """loss_parts [completion] on n + m windows gives the loss and gradients of the same sequences laid out with m = 0
    (reconstruction windows are never the source of a completion window's adapter), so Table 2's completion-only
    variant may use either."""
    n = N_COMPLETION
    runs = [
        (PretrainObjective(n, ("completion",)), synthetic_pretrain_set(2, n, WINDOW, VOCAB, seed=0)),
        (PretrainObjective(n), synthetic_pretrain_set(2, n, WINDOW, VOCAB, seed=0, reconstruction_windows=0)),
    ]
    losses, grads = [], []
    for objective, examples in runs:
        model = with_nonzero_delta(tiny_gam())
        batch = objective.collate(examples)
        loss = model(**{key: batch[key] for key in MODEL_INPUT_KEYS}).loss
        loss.backward()
        losses.append(loss.detach())
        grads.append({name: p.grad.clone() for name, p in model.generators.named_parameters()})
    torch.testing.assert_close(losses[0], losses[1])
    for name, grad in grads[0].items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, grads[1][name], atol=1e-6, rtol=1e-5)


def test_layout_without_reconstruction_windows(examples):
    """pretrain_data.reconstruction_windows: 0 trains completion alone and reports no reconstruction part."""
    n = N_COMPLETION
    completion_only = synthetic_pretrain_set(4, n, WINDOW, VOCAB, seed=0, reconstruction_windows=0)
    objective = PretrainObjective(n)
    batch, donor = objective.collate(completion_only[:2]), objective.collate(completion_only[2:4])
    assert batch["window_part"].shape == (2, n)
    assert objective.part_names.index("reconstruction") not in batch["window_part"].tolist()[0]
    variants = objective.validation_variants(batch, donor)
    assert [name for name, _ in variants] == ["own", "none", "other"]  # no reconstruction control to build
    with pytest.raises(ValueError, match="no reconstruction windows"):
        PretrainObjective(n, ("reconstruction",)).collate(completion_only[:2])
    with pytest.raises(ValueError, match="loss_parts"):
        PretrainObjective(n, ("answer",))


@pytest.mark.slow
def test_completion_only_training_still_validates_reconstruction(examples, tmp_path):
    result = train(
        tiny_gam(),
        PretrainObjective(N_COMPLETION, ("completion",)),
        examples[:20],
        examples[20:],
        tiny_config(0, steps=2, eval_every=0),
        tmp_path,
        seed=0,
    )
    rows = [r for r in read_metrics(tmp_path) if r["kind"] == "train"]
    assert rows and all(r["reconstruction_loss"] is None and math.isfinite(r["completion_loss"]) for r in rows)
    assert math.isfinite(result["own_reconstruction_ppl"]) and math.isfinite(result["other_reconstruction_ppl"])


def test_lr_schedule():
    cfg = TrainConfig(steps=10, warmup_steps=2, lr=1.0, min_lr_ratio=0.1, decay="cosine")
    factors = [cfg.lr_factor(s) for s in range(10)]
    assert factors[0] < factors[1] < factors[2] == 1.0
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    assert factors[-1] >= 0.1
    assert TrainConfig(steps=10, warmup_steps=0, decay="linear", min_lr_ratio=0.0).lr_factor(10) == 0.0


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"steps": 0}, "pretrain.steps"),
        ({"decay": "step"}, "pretrain.decay"),
        ({"resources": {"gpu": 1}}, "pretrain.resources"),
        ({"learning_rate": 1}, "unknown key"),
        ({"loss_parts": ["answer"]}, "pretrain.loss_parts"),
        ({"loss_parts": ["completion", "completion"]}, "pretrain.loss_parts"),
        ({"loss_parts": []}, "pretrain.loss_parts"),
    ],
)
def test_config_errors_name_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        PretrainConfig.from_dict({"steps": 1, **bad}, "pretrain")  # the section's path, as RunConfig builds it


def test_pretraining_keys_are_not_finetune_keys():
    """loss_parts and paper_val_documents belong to the pretraining objective: a finetune section refuses them."""
    for key, value in (("loss_parts", ["completion"]), ("paper_val_documents", 2)):
        with pytest.raises(ValueError, match=f"finetune.*{key}|unknown key"):
            FinetuneConfig.from_dict({key: value}, "finetune")


def test_deepspeed_config_must_not_set_owned_keys(tmp_path):
    from ga.train.loop import deepspeed_config

    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": 2}, "gradient_clipping": 5.0}))
    with pytest.raises(ValueError, match="gradient_clipping"):
        deepspeed_config(TrainConfig(deepspeed_config=str(path)), use_bf16=False, world_size=1)
    ds = deepspeed_config(
        TrainConfig(
            deepspeed_config=str(REPO / "resources/deepspeed/zero2.json"), micro_batch_size=3, grad_accum_steps=2
        ),
        use_bf16=False,
        world_size=4,
    )
    assert ds["train_batch_size"] == 24 and ds["zero_optimization"]["stage"] == 2


@pytest.mark.parametrize("settings, section", [(PretrainConfig, "pretrain"), (FinetuneConfig, "finetune")])
def test_loop_errors_name_the_section_the_settings_come_from(settings, section, tmp_path):
    from ga.train.loop import deepspeed_config

    with pytest.raises(FileNotFoundError, match=rf"^{section}\.deepspeed_config: .*missing\.json does not exist"):
        deepspeed_config(settings(deepspeed_config=str(tmp_path / "missing.json")), use_bf16=False, world_size=1)
    clashing = tmp_path / "ds.json"
    clashing.write_text(json.dumps({"gradient_clipping": 5.0}))
    with pytest.raises(ValueError, match=rf"\({section}\.\*\)"):
        deepspeed_config(settings(deepspeed_config=str(clashing)), use_bf16=False, world_size=1)


# ------------------------------------------------------------------ split folders read lazily (ga.data.pretrain)
@pytest.mark.slow
def test_training_on_a_lazily_read_split_is_bit_identical(tmp_path, tiny_tokenizer_dir):
    """The stage's lazy example set and the eager loader's tensors train the very same generator."""
    from ga.data.config import WindowLayout
    from ga.data.examples import load_examples, open_split
    from ga.testing.train_data import write_token_split

    layout = WindowLayout(window=WINDOW, completion_windows=N_COMPLETION, reconstruction_windows=N_COMPLETION)
    write_token_split(
        tmp_path / "train", 24, layout, tiny_tokenizer_dir, seed=0, vocab=VOCAB, document_tokens=(WINDOW, 8 * WINDOW)
    )
    lazy, _ = open_split(tmp_path / "train")
    tensors = load_examples(tmp_path / "train")
    eager = [{key: tensors[key][i] for key in MODEL_INPUT_KEYS} for i in range(len(lazy))]
    val = eager[:4]
    weights, rows = {}, {}
    for name, train_set in (("eager", eager), ("lazy", lazy)):
        model = tiny_gam()
        train(
            model,
            PretrainObjective(N_COMPLETION),
            train_set,
            val,
            tiny_config(0, eval_every=0),
            tmp_path / name,
            seed=0,
        )
        weights[name] = {k: v.clone() for k, v in model.generators.state_dict().items()}
        rows[name] = [
            {k: v for k, v in r.items() if not k.endswith(("_s", "per_s", "mem_gib"))}
            for r in read_metrics(tmp_path / name)
            if r["kind"] == "train"
        ]
    assert rows["lazy"] == rows["eager"] and len(rows["lazy"]) == 4
    assert all(torch.equal(weights["lazy"][k], weights["eager"][k]) for k in weights["eager"])


class DonorRecorder:
    """An objective that runs no forward pass: it records which examples validation pairs as receiver and donor."""

    part_names = ("all",)
    donor_variants = ("other",)

    def __init__(self):
        self.pairs: list[tuple[int, int]] = []

    def collate(self, examples):
        return [int(example["example_id"]) for example in examples]

    def validation_variants(self, batch, donor):
        self.pairs += list(zip(batch, donor))
        return []


def test_validation_takes_other_context_donors_from_disjoint_documents(tmp_path, tiny_tokenizer_dir):
    from ga.data.config import PretrainDataConfig
    from ga.data.examples import open_split
    from ga.data.pretrain import prepare_examples
    from ga.data.sources import write_documents
    from ga.train.distributed import Dist
    from ga.train.loop import validate

    cfg = PretrainDataConfig.from_dict(
        {
            "token_budget": 6000,
            "window": 16,
            "completion_windows": 4,
            "reconstruction_windows": 4,
            "val_fraction": 0.2,
            "examples_per_shard": 8,
            "embedded": {"python_docs": True, "entities": 30, "passages_per_entity": 2},
        }
    )
    write_documents(cfg, tiny_tokenizer_dir, tmp_path / "documents")
    prepare_examples(cfg, tmp_path / "documents", tiny_tokenizer_dir, tmp_path / "train", tmp_path / "val")
    val_set, _ = open_split(tmp_path / "val")
    documents = [set(val_set.documents(i)) for i in range(len(val_set))]
    assert any(documents[i] & documents[i + 1] for i in range(len(val_set) - 1)), "no document spans two examples"
    pairs = []
    for rank in range(2):  # each process's share
        recorder = DonorRecorder()
        validate(
            torch.nn.Linear(1, 1),
            recorder,
            val_set,
            TrainConfig(val_batch_size=3),
            Dist(rank=rank, world_size=2, local_rank=rank, device=torch.device("cpu"), backend="gloo"),
        )
        pairs += recorder.pairs
    assert sorted(receiver for receiver, _ in pairs) == list(range(len(val_set)))
    for receiver, donor in pairs:
        assert not documents[receiver] & documents[donor], (receiver, donor, documents[receiver], documents[donor])
    # example sets without document ids keep the next example as the donor
    recorder = DonorRecorder()
    plain = [{"example_id": torch.tensor(i)} for i in range(5)]
    validate(
        torch.nn.Linear(1, 1),
        recorder,
        plain,
        TrainConfig(val_batch_size=2),
        Dist(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), backend="gloo"),
    )
    assert recorder.pairs == [(i, (i + 1) % 5) for i in range(5)]
