"""What a training run reports: the metrics JSONL, optional TensorBoard scalars and a progress bar."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ga.io import write_text

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
TRAIN_SCALARS = ("loss", "lr", "grad_norm", "tokens_per_s")
"""Keys of a training row mirrored to TensorBoard (with each part's loss)."""


class TrainLog:
    """One JSONL row per optimizer step ("kind": "train") and per validation ("kind": "val"), mirrored to TensorBoard
    when asked, and a tqdm bar. Only the main process writes; on the others every method does nothing.

    On resume the JSONL keeps the rows up to the resumed step: the steps after it are redone and logged again.
    """

    def __init__(
        self,
        state_dir: Path,
        total_steps: int,
        start_step: int,
        part_names: Sequence[str],
        tensorboard: bool,
        enabled: bool,
    ):
        self.enabled = enabled
        self.path = Path(state_dir) / METRICS_FILE
        self.scalar_keys = (*TRAIN_SCALARS, *(f"{part}_loss" for part in part_names))
        self._writer = None
        if enabled:
            kept = []
            if start_step > 0 and self.path.is_file():
                lines = self.path.read_text().splitlines()
                kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= start_step]
            write_text("".join(line + "\n" for line in kept), self.path)
            self._file = self.path.open("a")
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError as err:
                    raise ImportError(
                        "tensorboard: true needs the `tensorboard` package, which is not installed"
                    ) from err
                self._writer = SummaryWriter(str(Path(state_dir) / TENSORBOARD_DIR))
        self._progress = tqdm(
            total=total_steps, initial=start_step, desc="train", disable=not enabled, dynamic_ncols=True
        )

    def _write(self, row: dict) -> None:
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def train_step(self, row: dict) -> None:
        if not self.enabled:
            return
        self._write(row)
        if self._writer is not None:
            for key in self.scalar_keys:
                if row.get(key) is not None:
                    self._writer.add_scalar(f"train/{key}", row[key], row["step"])
        self._progress.update(1)
        self._progress.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}", skipped=row["skipped_total"])

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._write({"kind": "val", "step": step, **metrics})
        if self._writer is not None:
            for key, value in metrics.items():
                self._writer.add_scalar(f"val/{key}", value, step)
        shown = {key: round(value, 3) for key, value in metrics.items() if key.endswith("_ppl")}
        tqdm.write(f"[val] step {step}: {shown}")

    def steps_done(self) -> None:
        """Close the progress bar (the final validation and checkpoint follow)."""
        self._progress.close()

    def close(self) -> None:
        self._progress.close()
        if self.enabled:
            self._file.close()
            if self._writer is not None:
                self._writer.close()
