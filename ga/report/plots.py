"""The report's figures as PNG files, drawn with matplotlib's object API on the Agg canvas (no display, no pyplot
state): training curves, F1 against context length beside the paper's curves, in-context-learning accuracy
against k, and stage timings / peak memory.

Each function draws one figure from rows the report already read (ga/report/run.py) and returns the PNG's path.
"""

from __future__ import annotations

import re
from pathlib import Path

DPI = 110
"""Sharp enough for a laptop screen at a few hundred KB per figure."""
PANEL_SIZE = (5.2, 3.6)
"""Width and height (inches) of one panel."""
VALIDATION_KEY = re.compile(r"^(own|other|none)_(.+)_ppl$")
"""A validation perplexity: adapter arm (the record's own context, another record's, none) and what it measures."""
ARM_COLORS = {"own": "tab:green", "other": "tab:orange", "none": "tab:gray"}
PART_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _figure(panels: int, title: str):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(PANEL_SIZE[0] * panels, PANEL_SIZE[1]), dpi=DPI, layout="constrained")
    axes = figure.subplots(1, panels, squeeze=False)[0]
    figure.suptitle(title)
    return figure, axes


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _colors(names) -> dict[str, str]:
    """One colour per name, stable across figures for the same set of names."""
    palette = [f"C{i}" for i in range(10)]
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(set(names)))}


def _series(rows: list[dict], key: str) -> tuple[list, list]:
    points = [(row["step"], row[key]) for row in rows if row.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def training_curves(train: list[dict], val: list[dict], title: str, path: str | Path) -> Path:
    """Three panels: the training loss of each part (every `*_loss` of the log) by step; the learning rate; the
    validation perplexities of the own / other / none adapter arms by step (log scale)."""
    figure, (loss_ax, lr_ax, val_ax) = _figure(3, title)
    loss_keys = sorted(
        {key for row in train for key in row if key == "loss" or key.endswith("_loss")},
        key=lambda key: (key != "loss", key),
    )
    colors = _colors(loss_keys)
    for key in loss_keys:
        steps, values = _series(train, key)
        loss_ax.plot(
            steps,
            values,
            label=key,
            color=colors[key],
            linewidth=2 if key == "loss" else 1,
            marker="." if len(steps) < len(train) else None,
        )
    loss_ax.set(xlabel="step", ylabel="training loss (nats / token)", title="loss per part")
    loss_ax.legend(fontsize="small")
    steps, rates = _series(train, "lr")
    lr_ax.plot(steps, rates, color="tab:blue")
    lr_ax.set(xlabel="step", ylabel="learning rate", title="learning rate")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    _validation_arms(val_ax, val)
    return _save(figure, path)


def _validation_arms(ax, val: list[dict]) -> None:
    """Validation perplexity of each arm and part: lines over steps, or grouped bars when validation ran once."""
    import numpy as np

    keys = sorted({key for row in val for key in row if VALIDATION_KEY.match(key)})
    parts = sorted({VALIDATION_KEY.match(key).group(2) for key in keys})
    arms = [arm for arm in ARM_COLORS if any(VALIDATION_KEY.match(key).group(1) == arm for key in keys)]
    steps = sorted({row["step"] for row in val})
    if len(steps) == 1:
        row, width = val[-1], 0.8 / max(len(arms), 1)
        for i, arm in enumerate(arms):
            values = [row.get(f"{arm}_{part}_ppl") for part in parts]
            ax.bar(
                np.arange(len(parts)) + i * width,
                [np.nan if v is None else v for v in values],
                width,
                color=ARM_COLORS[arm],
                label=f"{arm} adapter",
            )
        ax.set_xticks(np.arange(len(parts)) + width * (len(arms) - 1) / 2, parts, rotation=15, fontsize="small")
        ax.set(ylabel="validation perplexity", title=f"validation at step {steps[0]}: own / other / none adapter")
    else:
        for key in keys:
            arm, part = VALIDATION_KEY.match(key).groups()
            x, values = _series(val, key)
            ax.plot(
                x,
                values,
                color=ARM_COLORS[arm],
                marker=PART_MARKERS[parts.index(part) % len(PART_MARKERS)],
                label=f"{arm}: {part}",
            )
        ax.set(xlabel="step", ylabel="validation perplexity", title="validation: own / other / none adapter")
    if keys:
        ax.set_yscale("log")
        ax.legend(fontsize="x-small", ncol=2 if len(steps) > 1 else 1)
    else:
        ax.text(0.5, 0.5, "no validation yet", transform=ax.transAxes, ha="center", color="gray")


def context_use_curves(curves: dict[str, list[dict]], path: str | Path) -> Path:
    """Quality against CPU minutes for ablation variants that validated more than once (ga.ablation.validation_curve
    points): held-out reconstruction perplexity with the own (solid) and other-context (dashed) adapter, and the
    own-vs-other gap in %."""
    figure, (ppl_ax, gap_ax) = _figure(2, "context use over training")
    colors = _colors(curves)
    for variant, points in curves.items():
        timed = [p for p in points if p.get("train_minutes") is not None]
        minutes = [p["train_minutes"] for p in timed]
        for arm, style in (("own", "-"), ("other", "--")):
            ppl_ax.plot(
                minutes,
                [p[f"{arm}_reconstruction_ppl"] for p in timed],
                style,
                marker="o",
                color=colors[variant],
                label=f"{variant}: {arm}",
            )
        gap_ax.plot(
            minutes, [p["own_vs_other_reconstruction"] for p in timed], marker="o", color=colors[variant], label=variant
        )
    ppl_ax.set(
        xlabel="training minutes",
        ylabel="reconstruction perplexity",
        title="held-out reconstruction: own / other adapter",
    )
    gap_ax.set(xlabel="training minutes", ylabel="1 - own / other (%)", title="own vs other-context adapter")
    for ax in (ppl_ax, gap_ax):
        ax.legend(fontsize="x-small")
    return _save(figure, path)


def knowledge_f1(table, paper, path: str | Path) -> Path:
    """F1 (single shortest reference, the paper's scoring) against context length k, one panel per benchmark and
    one line per method; the paper's published curves of the same benchmark dashed beside them."""
    import polars as pl

    benchmarks = sorted(set(table["benchmark"].to_list()))
    figure, axes = _figure(len(benchmarks), "Knowledge QA: F1 against context length")
    methods = set(table["method"].to_list()) | (set(paper["method"].to_list()) if paper is not None else set())
    colors = _colors(methods)
    for ax, benchmark in zip(axes, benchmarks):
        ours = table.filter(pl.col("benchmark") == benchmark).sort("length")
        lengths = sorted(set(ours["length"].to_list()))
        for method in sorted(set(ours["method"].to_list())):
            rows = ours.filter(pl.col("method") == method)
            ax.plot(
                rows["length"].to_list(), rows["f1_shortest"].to_list(), marker="o", color=colors[method], label=method
            )
        published = (
            paper.filter((pl.col("benchmark") == benchmark) & pl.col("length").is_not_null())
            if paper is not None
            else None
        )
        if published is not None and published.height:
            for (model, method), rows in sorted(published.group_by("model", "method"), key=lambda g: g[0]):
                rows = rows.sort("length")
                ax.plot(
                    rows["length"].to_list(),
                    rows["f1"].to_list(),
                    linestyle="--",
                    marker="x",
                    color=colors[method],
                    alpha=0.7,
                    label=f"paper: {method} ({model})",
                )
                lengths = sorted(set(lengths) | set(rows["length"].to_list()))
        else:
            ax.text(
                0.02,
                0.98,
                "no published numbers for this benchmark",
                transform=ax.transAxes,
                va="top",
                fontsize="small",
                color="gray",
            )
        ax.set_xscale("log", base=2)
        ax.set_xticks(lengths, [str(k) for k in lengths])
        ax.set(xlabel="context length k (tokens)", ylabel="F1 (%)", title=benchmark)
        ax.legend(fontsize="x-small")
    return _save(figure, path)


def icl_accuracy(averages, path: str | Path) -> Path:
    """Mean accuracy over tasks against the number of demonstrations k: one panel per benchmark and group of tasks
    (all, then each kind), one line per method (zero_shot is its point at k = 0)."""
    import polars as pl

    from ga.eval.icl.results import ALL_TASKS

    panels = sorted(
        set(averages.select("benchmark", "tasks_of").iter_rows()),
        key=lambda panel: (panel[0], panel[1] != ALL_TASKS, panel[1]),
    )
    figure, axes = _figure(len(panels), "In-context learning: accuracy against k")
    colors = _colors(averages["method"].to_list())
    for ax, (benchmark, tasks_of) in zip(axes, panels):
        ours = averages.filter((pl.col("benchmark") == benchmark) & (pl.col("tasks_of") == tasks_of)).sort("k")
        for method in sorted(set(ours["method"].to_list())):
            points = ours.filter(pl.col("method") == method)
            ax.plot(points["k"].to_list(), points["accuracy"].to_list(), marker="o", color=colors[method], label=method)
        ks = sorted(set(ours["k"].to_list()))
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set(xlabel="demonstrations k", ylabel="accuracy (%)", title=f"{benchmark}: {tasks_of} tasks")
        ax.legend(fontsize="x-small")
    return _save(figure, path)


def stage_times(rows: list[dict], path: str | Path) -> Path:
    """Wall time (all jobs of the rule together) and peak memory (the largest job) per rule, in DAG order."""
    figure, (time_ax, memory_ax) = _figure(2, "Stage timings and peak memory")
    rules = [row["rule"] for row in rows][::-1]  # first stage on top
    walls = [(row["wall_s"] or 0.0) / 60 for row in rows][::-1]
    memory = [row["max_rss_mb"] or 0.0 for row in rows][::-1]
    time_ax.barh(rules, walls, color="tab:blue")
    time_ax.set(xlabel="wall time, all jobs (minutes)", title="time")
    memory_ax.barh(rules, memory, color="tab:purple")
    memory_ax.set(xlabel="peak RSS of the largest job (MB)", title="memory")
    memory_ax.tick_params(labelleft=False)
    figure.set_size_inches(PANEL_SIZE[0] * 2, max(PANEL_SIZE[1], 0.3 * len(rules) + 1))
    return _save(figure, path)
