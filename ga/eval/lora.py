"""PEFT LoRAs trained on the frozen base model for two baselines (docs/method.md#knowledge-acquisition):
continual pretraining (one LoRA per context, LM loss on the context's text) and QA fine-tuning (one LoRA per
benchmark, loss on the answers of question-answer chats).

A LoRA is kept as its PEFT config and adapter weights (`TrainedLora`) and applied to the base model only inside
`lora_applied(...)`, which injects the LoRA layers and removes them again without merging: the base model leaves
the block exactly as it entered it (weights, modules, requires_grad flags). Training is seeded (LoRA init, sequence
order, dropout) without touching the caller's random state.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ga.eval.config import LoraTrainingConfig
from ga.labels import IGNORE_INDEX

TRAINING_FILE = "lora_training.json"
"""Written beside PEFT's adapter files by `train_qa_lora`: steps, losses, sequence lengths, FLOPs."""
SAMPLE_LOSSES = 20
"""Losses kept per training run in its summary (evenly spaced over the steps)."""


@dataclass
class TrainedLora:
    config: Any
    """The `peft.LoraConfig` it was trained with."""
    weights: dict
    """PEFT's adapter state dict (`get_peft_model_state_dict`), on the CPU."""
    steps: int = 0
    trained_lengths: list[int] = field(default_factory=list)
    """Padded positions of every sequence of every optimizer step (what the training FLOPs count)."""
    losses: list[float] = field(default_factory=list)
    """Loss of every step."""
    validation_losses: list[float] = field(default_factory=list)
    """Mean validation loss (per target token) after every epoch, when `train_lora` had validation sequences."""
    best_epoch: int | None = None
    """The epoch (1-based) whose weights were kept (the lowest validation loss); None without validation."""
    validation_lengths: list[int] = field(default_factory=list)
    """Padded positions of every validation sequence of every validation pass (forward only)."""

    @property
    def shapes(self) -> list[tuple[int, int, int]]:
        """(d_in, d_out, rank) of every adapted linear map, in the order of the weights' names."""
        result = []
        for key in sorted(self.weights):
            if key.endswith("lora_A.weight"):
                lora_a, lora_b = self.weights[key], self.weights[key.replace("lora_A.weight", "lora_B.weight")]
                result.append((lora_a.shape[1], lora_b.shape[0], lora_a.shape[0]))
        return result

    def summary(self) -> dict:
        every = max(1, len(self.losses) // SAMPLE_LOSSES)
        summary = {
            "steps": self.steps,
            "sequences": len(self.trained_lengths),
            "positions": sum(self.trained_lengths),
            "final_loss": self.losses[-1] if self.losses else None,
            "losses": [[step, self.losses[step]] for step in range(0, len(self.losses), every)],
        }
        if self.validation_losses:
            summary.update(validation_losses=list(self.validation_losses), best_epoch=self.best_epoch)
        return summary


def peft_config(cfg: LoraTrainingConfig):
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


@contextlib.contextmanager
def _seeded(seed: int, device) -> Iterator[None]:
    """torch's global RNG seeded inside the block (PEFT's init draws from it), restored afterwards."""
    import torch

    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def lora_applied(base_model, config, weights: dict | None = None):
    """The base model with a LoRA injected (PEFT, unmerged), yielded as the PEFT model; removed on exit.

    weights: adapter weights to load (None: PEFT's fresh init, for training)."""
    from peft import get_peft_model, set_peft_model_state_dict

    flags = {name: parameter.requires_grad for name, parameter in base_model.named_parameters()}
    was_training = base_model.training
    model = get_peft_model(base_model, copy.deepcopy(config))
    try:
        if weights is not None:
            result = set_peft_model_state_dict(model, weights)
            missing = [key for key in result.missing_keys if "lora_" in key]
            if missing or result.unexpected_keys:
                raise ValueError(
                    f"LoRA weights do not fit the base model: missing {missing[:3]}, unexpected "
                    f"{list(result.unexpected_keys)[:3]}"
                )
        model.eval()
        yield model
    finally:
        model.unload()  # the LoRA layers out, the original linear maps back, nothing merged
        for name, parameter in base_model.named_parameters():
            parameter.requires_grad_(flags[name])
        base_model.train(was_training)


def _pieces(sequences: Sequence[Sequence[int]], labels: Sequence[Sequence[int]] | None, max_tokens: int):
    """Every sequence cut into pieces of at most `max_tokens` tokens (the last one the rest), with its labels."""
    pieces = []
    for index, sequence in enumerate(sequences):
        sequence_labels = list(sequence) if labels is None else list(labels[index])
        if len(sequence_labels) != len(sequence):
            raise ValueError(f"sequence {index}: {len(sequence)} ids but {len(sequence_labels)} labels")
        for start in range(0, len(sequence), max_tokens):
            pieces.append((list(sequence[start : start + max_tokens]), sequence_labels[start : start + max_tokens]))
    return pieces


def _padded(batch, pad_id: int):
    """(input_ids, labels, attention mask) of (ids, labels) pairs, right-padded, padding masked and without loss."""
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    targets = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, row_labels) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        targets[row, : len(ids)] = torch.tensor(row_labels)
        mask[row, : len(ids)] = 1
    return input_ids, targets, mask


def validation_loss(model, pieces, batch_size: int, pad_id: int, trained: TrainedLora) -> float:
    """Mean loss per target token over `pieces` ((ids, labels) pairs), in eval mode without gradients; the padded
    lengths are added to `trained.validation_lengths`."""
    import torch

    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(pieces), batch_size):
            input_ids, targets, mask = _padded(pieces[start : start + batch_size], pad_id)
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
            shifted = targets[:, 1:].to(device)
            total += float(
                torch.nn.functional.cross_entropy(
                    logits[:, :-1].transpose(1, 2), shifted, ignore_index=IGNORE_INDEX, reduction="sum"
                )
            )
            count += int((shifted != IGNORE_INDEX).sum())
            trained.validation_lengths += [input_ids.shape[1]] * input_ids.shape[0]
    model.train(was_training)
    return total / count if count else float("nan")


def train_lora(
    base_model,
    sequences: Sequence[Sequence[int]],
    cfg: LoraTrainingConfig,
    seed: int,
    labels: Sequence[Sequence[int]] | None = None,
    pad_id: int = 0,
    validation: tuple[Sequence[Sequence[int]], Sequence[Sequence[int]] | None] | None = None,
    patience: int | None = None,
    progress: bool = False,
) -> TrainedLora:
    """A fresh LoRA trained on `sequences` (token ids) with the causal LM loss, on the frozen base model.

    Sequences are cut into pieces of `cfg.max_tokens`; every epoch visits the pieces in a seeded random order, in
    batches of `cfg.batch_size` (right-padded, padding masked); AdamW at `cfg.lr` after a linear warmup of
    `cfg.warmup_steps`; `cfg.epochs` passes or `cfg.max_steps` steps, whichever ends first. labels: per-token
    targets, IGNORE_INDEX for no loss (None: every token). The base model is unchanged afterwards.

    validation: (sequences, labels) whose mean loss per target token is measured after every epoch; the weights of
    the epoch with the lowest loss are kept, and with `patience` training stops after that many epochs without a
    lower loss (early stopping). None (or no target token in them): the last step's weights.
    progress: show a progress bar of the optimizer steps with the running loss."""
    import torch
    from peft import get_peft_model_state_dict
    from tqdm.auto import tqdm

    pieces = [piece for piece in _pieces(sequences, labels, cfg.max_tokens) if len(piece[0]) > 1]
    if not pieces:
        raise ValueError("train_lora: no training sequence of at least two tokens")
    held_out = []
    if validation is not None:
        held_out = [piece for piece in _pieces(validation[0], validation[1], cfg.max_tokens) if len(piece[0]) > 1]
    device = next(base_model.parameters()).device
    config = peft_config(cfg)
    trained = TrainedLora(config=config, weights={})
    best_loss, best_weights, stale = float("inf"), None, 0

    def lora_weights(model) -> dict:
        return {key: value.detach().cpu().clone() for key, value in get_peft_model_state_dict(model).items()}

    steps_per_epoch = -(-len(pieces) // cfg.batch_size)
    total_steps = (
        cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    )
    bar = tqdm(total=total_steps, desc="LoRA", unit="step", disable=not progress)
    with _seeded(seed, device), lora_applied(base_model, config) as model:
        order = torch.Generator().manual_seed(seed)
        parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        optimizer = torch.optim.AdamW(parameters, lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / (cfg.warmup_steps + 1)) if cfg.warmup_steps else 1.0
        )
        model.train()
        for epoch in range(1, cfg.epochs + 1):
            if cfg.max_steps is not None and trained.steps >= cfg.max_steps:
                break
            permutation = torch.randperm(len(pieces), generator=order).tolist()
            for start in range(0, len(pieces), cfg.batch_size):
                if cfg.max_steps is not None and trained.steps >= cfg.max_steps:
                    break
                batch = [pieces[i] for i in permutation[start : start + cfg.batch_size]]
                input_ids, targets, mask = _padded(batch, pad_id)
                width = input_ids.shape[1]
                loss = model(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device), labels=targets.to(device)
                ).loss
                loss.backward()
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                trained.steps += 1
                trained.losses.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(loss=f"{trained.losses[-1]:.3f}")
                trained.trained_lengths += [width] * len(batch)
            if held_out:
                loss = validation_loss(model, held_out, cfg.batch_size, pad_id, trained)
                trained.validation_losses.append(loss)
                if loss < best_loss:
                    best_loss, best_weights, stale, trained.best_epoch = loss, lora_weights(model), 0, epoch
                else:
                    stale += 1
                    if patience is not None and stale >= patience:
                        break
        trained.weights = lora_weights(model) if best_weights is None else best_weights
    bar.close()
    return trained


def qa_chats(chat_format, qa_pairs: Sequence[tuple[str, str]], max_tokens: int) -> tuple[list, list, int]:
    """(ids, labels) of each question-answer pair as a one-turn chat with loss on the answer and its end-of-turn
    token (`ChatFormat`, as instruction tuning), and how many pairs were left out for exceeding `max_tokens`."""
    rendered = [
        chat_format.render([{"role": "user", "content": question}, {"role": "assistant", "content": answer}])
        for question, answer in qa_pairs
    ]
    ids, labels, too_long = [], [], 0
    for chat_ids, chat_labels in chat_format.encode(rendered):
        if len(chat_ids) > max_tokens:
            too_long += 1
            continue
        ids.append(chat_ids.tolist())
        labels.append(chat_labels.tolist())
    return ids, labels, too_long


def train_qa_lora(
    base_model, tokenizer, qa_pairs: Sequence[tuple[str, str]], cfg: LoraTrainingConfig, seed: int, out_dir: str | Path
) -> TrainedLora:
    """The QA fine-tuning baseline's LoRA, trained once on a benchmark's (question, answer) pairs and saved with
    PEFT's `save_pretrained` (adapter_config.json, adapter_model.safetensors) plus `TRAINING_FILE`, all at once."""
    from ga.format import ChatFormat
    from ga.io import atomic_dir, write_json

    chat_format = ChatFormat(tokenizer)
    ids, labels, too_long = qa_chats(chat_format, qa_pairs, cfg.max_tokens)
    if not ids:
        raise ValueError(
            f"train_qa_lora: none of the {len(qa_pairs)} question-answer pairs fits max_tokens {cfg.max_tokens}"
        )
    from ga.eval.generation import pad_id

    trained = train_lora(base_model, ids, cfg, seed, labels=labels, pad_id=pad_id(tokenizer), progress=True)
    with atomic_dir(Path(out_dir)) as build_dir, lora_applied(base_model, trained.config, trained.weights) as model:
        model.save_pretrained(build_dir, safe_serialization=True)
        write_json(
            {**trained.summary(), "qa_pairs": len(qa_pairs), "qa_pairs_over_max_tokens": too_long, "seed": seed},
            Path(build_dir) / TRAINING_FILE,
        )
    return trained


def load_lora(directory: str | Path) -> TrainedLora:
    """A LoRA saved by PEFT's `save_pretrained` (e.g. by `train_qa_lora`), ready for `lora_applied`."""
    from peft import LoraConfig
    from peft.utils import load_peft_weights

    directory = Path(directory)
    if not (directory / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{directory}: no adapter_config.json (not a PEFT LoRA folder)")
    return TrainedLora(
        config=LoraConfig.from_pretrained(str(directory)), weights=load_peft_weights(str(directory), device="cpu")
    )
