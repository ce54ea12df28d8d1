"""Instruction tuning as an objective of the shared training loop (docs/method.md#instruction-tuning).

An example is one tokenized record (ga/data/sft/tokenize.py): c context windows (adapter prefix w, no loss), then
conversation windows (adapter prefix c, loss on the assistant tokens only; the labels come from the data stage).
Records have different window counts S; a batch pads each to the longest with empty windows (attention mask 0,
labels IGNORE_INDEX, adapter prefix 0), which the model runs but which add nothing to states or loss.

Padding is limited by length-grouped batching (`LengthGroupedBatches`): records sorted by window count are cut into
fixed groups of `micro_batch_size`, and the loop draws whole groups (its micro-batch is one group). Whole-record
packing is not possible in this layout: a window's adapter is a prefix of its row's windows, so two records in one
row would adapt each other.

Parts are the mixture's datasets: the loop's per-part metrics are per-dataset answer-token losses/perplexities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ga.labels import IGNORE_INDEX
from ga.train.objective import NO_PART, OWN_VARIANT

WINDOW_KEYS = ("input_ids", "attention_mask", "labels")
"""Per-window (S, L) tensors of an example; adapter_prefix is (S,)."""
EPOCH_GROUPING_SEED_STRIDE = 7_919
"""Ties of equal window count are broken by a permutation seeded with seed * stride (distinct from the loop's)."""


def _records(items: Sequence) -> list[Mapping]:
    """Items are records, or groups of records (lists, as `LengthGroupedBatches` yields them): a flat list."""
    flat = []
    for item in items:
        flat.extend(item if isinstance(item, (list, tuple)) else [item])
    return flat


class SftObjective:
    """Answer-token loss on instruction-tuning records; validation with the record's own context adapter, another
    record's, and none. `datasets`: the mixture's datasets, in order (the reported parts)."""

    donor_variants = ("other",)

    def __init__(self, datasets: Sequence[str]):
        if not datasets:
            raise ValueError("the instruction-tuning mixture names no dataset")
        self.part_names = tuple(datasets)

    def part_of(self, dataset: str) -> int:
        try:
            return self.part_names.index(dataset)
        except ValueError:
            raise ValueError(
                f"example of dataset {dataset!r}, which the mixture ({list(self.part_names)}) does not have"
            ) from None

    def collate(self, items: Sequence) -> dict[str, torch.Tensor]:
        """Records (or groups of records) -> a batch padded to the most windows with empty windows.

        Besides MODEL_INPUT_KEYS and window_part: `windows` (B,) real windows and `context_windows` (B,) of each row.
        """
        records = _records(items)
        if not records:
            raise ValueError("cannot build a batch from zero examples")
        n_windows = max(int(r["adapter_prefix"].shape[0]) for r in records)
        length = int(records[0]["input_ids"].shape[1])
        batch_size = len(records)
        batch = {
            "input_ids": torch.zeros(batch_size, n_windows, length, dtype=torch.long),
            "attention_mask": torch.zeros(batch_size, n_windows, length, dtype=torch.long),
            "labels": torch.full((batch_size, n_windows, length), IGNORE_INDEX, dtype=torch.long),
            "adapter_prefix": torch.zeros(batch_size, n_windows, dtype=torch.long),
            "window_part": torch.full((batch_size, n_windows), NO_PART, dtype=torch.long),
            "windows": torch.zeros(batch_size, dtype=torch.long),
            "context_windows": torch.zeros(batch_size, dtype=torch.long),
        }
        for row, record in enumerate(records):
            windows = int(record["adapter_prefix"].shape[0])
            context = int(record["context_windows"])
            if record["input_ids"].shape[1] != length:
                raise ValueError(f"examples disagree on the window length: {length} and {record['input_ids'].shape[1]}")
            for key in WINDOW_KEYS:
                batch[key][row, :windows] = torch.as_tensor(record[key])
            batch["adapter_prefix"][row, :windows] = torch.as_tensor(record["adapter_prefix"])
            batch["window_part"][row, context:windows] = self.part_of(record["dataset"])
            batch["windows"][row], batch["context_windows"][row] = windows, context
        return batch

    @staticmethod
    def _row(batch: Mapping[str, torch.Tensor], row: int) -> dict:
        """Row `row` of a batch without its padding windows, as a record (dataset replaced by its part index)."""
        windows = int(batch["windows"][row])
        return {
            **{key: batch[key][row, :windows] for key in (*WINDOW_KEYS, "adapter_prefix", "window_part")},
            "context_windows": int(batch["context_windows"][row]),
        }

    def _pad(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        n_windows = max(r["adapter_prefix"].shape[0] for r in rows)
        length = rows[0]["input_ids"].shape[1]
        fill = {
            "input_ids": 0,
            "attention_mask": 0,
            "labels": IGNORE_INDEX,
            "adapter_prefix": 0,
            "window_part": NO_PART,
        }
        batch = {}
        for key, value in fill.items():
            shape = (n_windows, length) if key in WINDOW_KEYS else (n_windows,)
            padded = []
            for r in rows:
                out = torch.full(shape, value, dtype=torch.long)
                out[: r[key].shape[0]] = r[key]
                padded.append(out)
            batch[key] = torch.stack(padded)
        batch["windows"] = torch.tensor([r["adapter_prefix"].shape[0] for r in rows])
        batch["context_windows"] = torch.tensor([r["context_windows"] for r in rows])
        return batch

    def validation_variants(
        self, batch: dict[str, torch.Tensor], donor: dict[str, torch.Tensor]
    ) -> list[tuple[str, dict[str, torch.Tensor]]]:
        """The same answer tokens scored three ways:

        own:   the conversation windows adapted by the record's own context windows, as in training.
        other: the record's context windows replaced by the donor's (a different record); the conversation windows,
               their labels and parts stay, now adapted by all of the donor's context windows.
        none:  every adapter prefix 0: the base model alone answers.
        own < other is use of the context itself; other < none is adaptation to the task format.
        """
        none = dict(batch, adapter_prefix=torch.zeros_like(batch["adapter_prefix"]))
        others = []
        for row in range(batch["input_ids"].shape[0]):
            ours, theirs = self._row(batch, row), self._row(donor, row)
            c, d = ours["context_windows"], theirs["context_windows"]
            combined = {key: torch.cat([theirs[key][:d], ours[key][c:]]) for key in (*WINDOW_KEYS, "window_part")}
            n_conversation = ours["adapter_prefix"].shape[0] - c
            combined["adapter_prefix"] = torch.cat([torch.arange(d), torch.full((n_conversation,), d)])
            combined["context_windows"] = d
            others.append(combined)
        return [(OWN_VARIANT, batch), ("other", self._pad(others)), ("none", none)]


class LengthGroupedBatches:
    """A training split as fixed groups of `group_size` records of similar window counts (item i: a list of
    records), so that a micro-batch wastes little on padding windows. Groups: records sorted by window count (ties
    in a seeded order), cut in order; the last group may be smaller. The loop shuffles the groups every epoch.
    `by_length=False` cuts the groups from a seeded permutation instead (random batching, for comparison).

    `padding_share()`: the share of window slots that are padding when training on these groups; `random_padding_
    share()`: the same for groups of randomly chosen records, for comparison.
    """

    def __init__(self, examples, group_size: int, seed: int, by_length: bool = True):
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.examples, self.group_size = examples, group_size
        self.windows = np.asarray(examples.windows, dtype=np.int64)
        self.seed = seed
        if by_length:
            tie_break = np.random.default_rng(seed * EPOCH_GROUPING_SEED_STRIDE).permutation(len(self.windows))
            self.groups = self._cut(np.lexsort((tie_break, self.windows)))
        else:
            self.groups = self._random_groups()

    def _cut(self, order: np.ndarray) -> list[list[int]]:
        return [order[start : start + self.group_size].tolist() for start in range(0, len(order), self.group_size)]

    def _random_groups(self) -> list[list[int]]:
        return self._cut(np.random.default_rng(self.seed).permutation(len(self.windows)))

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> list[dict]:
        return [self.examples[i] for i in self.groups[index]]

    def _share(self, groups: Sequence[Sequence[int]]) -> float:
        real = sum(int(self.windows[g].sum()) for g in groups)
        slots = sum(len(g) * int(self.windows[g].max()) for g in groups)
        return 1.0 - real / slots if slots else 0.0

    def padding_share(self) -> float:
        return self._share(self.groups)

    def random_padding_share(self) -> float:
        return self._share(self._random_groups())

    def token_padding_share(self) -> float:
        """Share of the token positions of these groups' micro-batches (padding windows included) that are
        padding."""
        real = np.asarray(self.examples.real_tokens, dtype=np.int64)
        slots = sum(len(g) * int(self.windows[g].max()) for g in self.groups) * self.examples.window
        return 1.0 - int(sum(int(real[g].sum()) for g in self.groups)) / slots if slots else 0.0


def token_padding_share(examples) -> float:
    """Share of the tokens of the records' own windows that are padding (the end of the last context window and
    of each conversation window), before any batching."""
    slots = int(np.sum(examples.windows)) * examples.window
    return 1.0 - int(np.sum(examples.real_tokens)) / slots if slots else 0.0
