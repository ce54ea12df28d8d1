"""What the training loop optimizes, as a part plugged into it: how examples become a batch, how the loss splits
into named parts, and which controlled variants of a held-out batch validation scores.

Pretraining (reconstruction + completion, as in the Generative Adapter paper) is `PretrainObjective`; instruction
tuning supplies its own objective to the same loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import torch

from ga.labels import IGNORE_INDEX
from ga.train.config import LOSS_PARTS

# Keys of a batch that the GenerativeAdapter forward takes; everything else in a batch is bookkeeping.
MODEL_INPUT_KEYS = ("input_ids", "attention_mask", "labels", "adapter_prefix")
# window_part value of a window whose tokens count towards no reported part.
NO_PART = -1
# The validation variant in which each held-out example is adapted by its own context; donor variants are compared
# with it example by example.
OWN_VARIANT = "own"


class Objective(Protocol):
    """A training objective for `ga.train.loop.train`.

    part_names:          names of the loss parts reported separately (index = value in a batch's `window_part`).
    collate:             examples (dicts of (S, L) / (S,) tensors) -> batch dict of (B, S, L) / (B, S) tensors with
                         at least MODEL_INPUT_KEYS and `window_part` (B, S): the part each window's tokens count to.
    validation_variants: a held-out batch and a donor batch (other held-out sequences, same shapes) -> named batches:
                         each variant's metrics are the per-part perplexities over all its batches (variants of the
                         same name are pooled). Every variant keeps the held-out batch's rows in order.
    donor_variants:      names of the variants whose adapter comes from the donor batch: where a held-out example
                         has no donor, its row of these variants is not scored (and the loop counts it).

    That is all the loop needs from an objective: it knows no layout, labels or part of its own (part names only name
    the metrics). The training loss is the model's causal LM loss over the labelled tokens (an objective shapes it
    through `labels`, e.g. IGNORE_INDEX on prompts). The donor of held-out example i is chosen by the validation set:
    `val_set.donor_for(i)` (the nearest later example sharing no document with i) where the set knows its documents,
    else example i+1.
    """

    part_names: tuple[str, ...]
    donor_variants: tuple[str, ...]

    def collate(self, examples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]: ...

    def validation_variants(
        self, batch: dict[str, torch.Tensor], donor: dict[str, torch.Tensor]
    ) -> list[tuple[str, dict[str, torch.Tensor]]]: ...


def stack_examples(examples: Sequence[Mapping[str, torch.Tensor]], keys: Sequence[str]) -> dict[str, torch.Tensor]:
    """Stack per-example tensors into a batch, with an error naming the key whose shapes disagree."""
    if not examples:
        raise ValueError("cannot build a batch from zero examples")
    batch = {}
    for key in keys:
        try:
            batch[key] = torch.stack([torch.as_tensor(example[key]) for example in examples])
        except KeyError as err:
            raise KeyError(f"example is missing {key!r}; it has {sorted(examples[0])}") from err
        except RuntimeError as err:
            shapes = [tuple(torch.as_tensor(example[key]).shape) for example in examples]
            raise ValueError(f"examples disagree on the shape of {key!r}: {shapes}") from err
    return batch


def window_nll(window_losses: torch.Tensor, window_token_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-weighted NLL and labelled-token count of each window, float64, from per-window mean losses.

    Windows without labelled tokens contribute nothing (their mean loss may be undefined).
    """
    counts = window_token_counts.detach().to(torch.float64)
    nll = torch.where(counts > 0, window_losses.detach().to(torch.float64) * counts, torch.zeros_like(counts))
    return nll, counts


def _sum_by_part(values: torch.Tensor, window_part: torch.Tensor, n_parts: int) -> torch.Tensor:
    """(n_parts,) sums of per-window `values` over the windows of each part."""
    sums = torch.zeros(n_parts, dtype=values.dtype, device=values.device)
    window_part = window_part.to(values.device)
    for part in range(n_parts):
        sums[part] = values[window_part == part].sum()
    return sums


def part_sums(
    window_losses: torch.Tensor, window_token_counts: torch.Tensor, window_part: torch.Tensor, n_parts: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-weighted NLL sums and token counts per part, float64 (n_parts,) each, from per-window mean losses."""
    nll, counts = window_nll(window_losses, window_token_counts)
    return _sum_by_part(nll, window_part, n_parts), _sum_by_part(counts, window_part, n_parts)


class LossSums:
    """NLL and labelled-token sums (float64, CPU) per part and over all windows, accumulated over batches.

    `table` is (2, n_parts + 1): row 0 the NLL, row 1 the tokens; the last column counts every window, including
    those of no part (NO_PART). Each batch's per-window NLL is computed once and feeds both the parts and the total.
    """

    def __init__(self, n_parts: int):
        self.n_parts = n_parts
        self.table = torch.zeros(2, n_parts + 1, dtype=torch.float64)

    def add(self, window_losses: torch.Tensor, window_token_counts: torch.Tensor, window_part: torch.Tensor) -> None:
        nll, counts = window_nll(window_losses, window_token_counts)
        batch = torch.stack(
            [
                torch.cat([_sum_by_part(nll, window_part, self.n_parts), nll.sum().view(1)]),
                torch.cat([_sum_by_part(counts, window_part, self.n_parts), counts.sum().view(1)]),
            ]
        )
        self.table += batch.cpu()

    def combine(self, sum_over_processes: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace this process's sums by those of all processes (e.g. with `Dist.sum`)."""
        self.table = sum_over_processes(self.table)

    def mean(self, part: int | None = None) -> float | None:
        """Mean NLL per labelled token of `part` (None: all windows); None when it has no labelled tokens."""
        column = self.n_parts if part is None else part
        nll, tokens = self.table[:, column]
        return float(nll / tokens) if tokens > 0 else None


class ExampleSums:
    """NLL and labelled-token sums (float64, CPU) per held-out example and part: (n_examples, n_parts, 2), last axis
    (NLL, tokens). Validation's accumulator: the per-part means over all examples, and what a paired comparison of
    two variants needs (the same example scored both ways)."""

    def __init__(self, n_examples: int, n_parts: int):
        self.table = torch.zeros(n_examples, n_parts, 2, dtype=torch.float64)

    def add(
        self,
        indices: Sequence[int],
        window_losses: torch.Tensor,
        window_token_counts: torch.Tensor,
        window_part: torch.Tensor,
    ) -> None:
        """Row r of the batch is held-out example indices[r]. One (rows, parts) sum on the batch's device and one copy
        to the host, not a copy per row."""
        nll, counts = window_nll(window_losses, window_token_counts)
        parts = torch.arange(self.table.shape[1], device=nll.device)
        in_part = (window_part.to(nll.device)[..., None] == parts).to(nll.dtype)  # (rows, windows, parts)
        batch = torch.stack(
            [torch.einsum("bs,bsp->bp", nll, in_part), torch.einsum("bs,bsp->bp", counts, in_part)], dim=-1
        )
        self.table.index_add_(0, torch.as_tensor(list(indices), dtype=torch.long), batch.cpu())

    def combine(self, sum_over_processes: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Each process filled its own examples' rows: the sum over processes is the whole table."""
        self.table = sum_over_processes(self.table)

    def mean(self, part: int) -> float | None:
        """Mean NLL per labelled token of `part` over all examples; None when it has no labelled tokens."""
        nll, tokens = self.table[:, part].sum(dim=0)
        return float(nll / tokens) if tokens > 0 else None


def sign_test_p(lower: int, higher: int) -> float:
    """Two-sided exact sign test: the probability, with no difference between two arms, of a split of `lower` +
    `higher` paired examples at least this uneven (ties are left out before calling)."""
    n = lower + higher
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(max(lower, higher), n + 1))
    return min(1.0, 2 * tail / 2**n)


def paired_comparison(first: ExampleSums, second: ExampleSums, part: int) -> dict[str, float] | None:
    """Per example of `part` scored in both: is its mean answer NLL lower under `first`? Counts and the sign test's
    p-value; None when no example of the part was scored in both."""
    tokens_first, tokens_second = first.table[:, part, 1], second.table[:, part, 1]
    both = (tokens_first > 0) & (tokens_second > 0)
    if not bool(both.any()):
        return None
    mean_first = first.table[both, part, 0] / tokens_first[both]
    mean_second = second.table[both, part, 0] / tokens_second[both]
    lower, higher = int((mean_first < mean_second).sum()), int((mean_first > mean_second).sum())
    return {"examples": int(both.sum()), "lower": lower, "sign_test_p": sign_test_p(lower, higher)}


ALL_LABELS = "all_labels"
"""Batch key of the labels of every part. `labels` (what training optimizes) leaves out the windows of the parts not in
`loss_parts`; validation scores `all_labels`."""


class PretrainObjective:
    """Reconstruction + completion pretraining (the Generative Adapter paper's self-supervised objective).

    Each example holds `n_completion` completion windows (the sequence's own text, window i adapted by windows
    0..i-1) followed by `m <= n_completion` reconstruction windows (window n+j: a span copied from windows 0..j,
    adapted by them; m may be 0). The loss is the causal LM loss over the labelled tokens of the parts in
    `loss_parts` (docs/method.md#pretraining-objective). Reported parts:

    first_window:   completion window 0, which has no adapter (the base model alone on the sequence's first window);
    completion:     the adapted completion windows 1..n-1;
    reconstruction: the reconstruction windows (none when m = 0).

    `first_window` belongs to the completion objective: it is labelled exactly when `completion` is in `loss_parts`.
    It carries no gradient to the generator (its delta is zero), only a share of the loss's token count.
    """

    part_names = ("completion", "reconstruction", "first_window")
    donor_variants = ("other",)

    def __init__(self, n_completion: int, loss_parts: Sequence[str] = LOSS_PARTS):
        if n_completion < 1:
            raise ValueError(f"n_completion must be >= 1, got {n_completion}")
        unknown = sorted(set(loss_parts) - set(LOSS_PARTS))
        if unknown or not loss_parts:
            raise ValueError(f"loss_parts must be a non-empty subset of {list(LOSS_PARTS)}, got {list(loss_parts)}")
        self.n_completion = n_completion
        self.loss_parts = tuple(loss_parts)

    def window_part(self, batch_size: int, n_windows: int) -> torch.Tensor:
        if n_windows < self.n_completion:
            raise ValueError(
                f"examples have {n_windows} windows; pretraining needs at least the "
                f"{self.n_completion} completion windows (any further ones are reconstruction windows)"
            )
        part = torch.full((batch_size, n_windows), self.part_names.index("reconstruction"), dtype=torch.long)
        part[:, : self.n_completion] = self.part_names.index("completion")
        part[:, 0] = self.part_names.index("first_window")
        return part

    def unlabelled_windows(self, window_part: torch.Tensor) -> torch.Tensor:
        """(B, S) bool: windows whose part is not in `loss_parts` (their labels are dropped for training)."""
        trained = {"completion": ("completion", "first_window"), "reconstruction": ("reconstruction",)}
        kept = [self.part_names.index(part) for loss_part in self.loss_parts for part in trained[loss_part]]
        return ~torch.isin(window_part, torch.tensor(kept, dtype=window_part.dtype))

    def collate(self, examples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = stack_examples(examples, MODEL_INPUT_KEYS)
        batch_size, n_windows = batch["input_ids"].shape[:2]
        if batch["adapter_prefix"].shape != (batch_size, n_windows):
            raise ValueError(
                f"adapter_prefix has shape {tuple(batch['adapter_prefix'].shape)}, expected "
                f"{(batch_size, n_windows)} (one prefix length per window)"
            )
        if self.loss_parts == ("reconstruction",) and n_windows == self.n_completion:
            raise ValueError(
                "loss_parts is [reconstruction] but the examples have no reconstruction windows "
                "(pretrain_data.reconstruction_windows: 0): nothing would be trained"
            )
        batch["window_part"] = self.window_part(batch_size, n_windows)
        batch[ALL_LABELS] = batch["labels"]
        unlabelled = self.unlabelled_windows(batch["window_part"])
        if unlabelled.any():
            batch["labels"] = batch["labels"].masked_fill(unlabelled[:, :, None], IGNORE_INDEX)
        return batch

    def validation_variants(
        self, batch: dict[str, torch.Tensor], donor: dict[str, torch.Tensor]
    ) -> list[tuple[str, dict[str, torch.Tensor]]]:
        """Three ways to score the same targets: this project's own validation protocol, on held-out packed
        sequences in the training layout (the paper's Table 2 protocol is ga/train/paper_protocol.py). Every part
        is scored, whatever `loss_parts` trains.

        own:   each window adapted by its own sequence's earlier windows, as in training.
        none:  no adapter at all (every adapter prefix 0): the base model alone.
        other: the adapter comes from a *different* sequence (the donor's completion windows) while the scored tokens
               stay the same. Reconstruction: the donor's completion windows replace ours in front of our
               reconstruction windows (same prefixes, so window n+j is adapted by donor windows 0..j). Completion: a
               second batch puts the donor's completion windows in front of ours and gives our window i the prefix
               i, so it is adapted by donor windows 0..i-1 exactly where training used our own windows 0..i-1.
        The gap between `other` and `none` is domain adaptation; the gap between `own` and `other` is real use
        of the context. `first_window` has no adapter in any variant, so all three agree on it.
        """
        n = self.n_completion
        batch = dict(batch, labels=batch[ALL_LABELS])
        donor = dict(donor, labels=donor[ALL_LABELS])
        batch_size, n_windows = batch["input_ids"].shape[:2]

        none = dict(batch, adapter_prefix=torch.zeros_like(batch["adapter_prefix"]))

        other_completion = {}
        for key in ("input_ids", "attention_mask", "labels"):
            other_completion[key] = torch.cat([donor[key][:, :n], batch[key][:, :n]], dim=1)
        other_completion["labels"][:, :n] = IGNORE_INDEX
        own_prefix = batch["adapter_prefix"][:, :n]
        other_completion["adapter_prefix"] = torch.cat([own_prefix, own_prefix], dim=1)
        other_completion["window_part"] = torch.cat(
            [torch.full((batch_size, n), NO_PART, dtype=torch.long), batch["window_part"][:, :n]], dim=1
        )
        variants = [(OWN_VARIANT, batch), ("none", none)]
        if n_windows > n:  # reconstruction windows exist (pretrain_data.reconstruction_windows > 0)
            other_recon = {key: value.clone() for key, value in batch.items()}
            for key in ("input_ids", "attention_mask"):
                other_recon[key][:, :n] = donor[key][:, :n]
            other_recon["labels"][:, :n] = IGNORE_INDEX
            other_recon["window_part"][:, :n] = NO_PART
            variants.append(("other", other_recon))
        variants.append(("other", other_completion))
        return variants
