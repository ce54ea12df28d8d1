"""The report page of one run: its sections (tables and figures) from the run's folder, and index.html + plots/.

Sections, in the order a reader of the paper looks for them: the pipeline (DAG), data statistics, training
(pretraining, instruction tuning), each evaluation beside the paper's published numbers (knowledge QA by context
length, in-context learning, personalization with its cost table), measured costs, stage timings and peak memory,
and the config with package versions. A stage that did not run (a partial run) gets a note, not an empty table.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ga.layout import RunLayout
from ga.report import plots
from ga.report.content import Figure, Section, Table
from ga.report.run import (
    SPLITS,
    TrainingLog,
    manifest_of,
    package_versions,
    read_json_if_exists,
    read_parquet_if_exists,
    read_training_log,
    sft_source_manifests,
    stage_costs,
)

PAPER_ARM_KEY = re.compile(r"^paper_(none_)?(.+)_ppl$")
VALIDATION_ARMS = ("own", "other", "none")
PAIRED_KEY = re.compile(r"^own_vs_other_(.+)_(lower|examples|sign_p)$")
PERCENT = 100


@dataclass(frozen=True)
class ReportInputs:
    """What the page is built from: the run folder, Snakemake's benchmark folder of the run, and the Snakefile
    (for the rule graph; None leaves the DAG out with a note)."""

    run_dir: Path
    benchmarks_dir: Path
    snakefile: Path | None = None


# ------------------------------------------------------------------ sections


def dag_section(inputs: ReportInputs, plots_dir: Path) -> Section:
    from ga.report.dag import DagUnavailable, draw_rule_graph

    section = Section(
        "Pipeline",
        "The rules of the workflow for this run's config (`snakemake --rulegraph`); each "
        "rule runs one `ga` stage (ga/stages/).",
    )
    if inputs.snakefile is None:
        section.notes.append("The rule graph is not drawn: no Snakefile was given.")
        return section
    try:
        png = draw_rule_graph(inputs.snakefile, RunLayout(inputs.run_dir).config, plots_dir / "rulegraph.png")
    except DagUnavailable as err:
        note = f"The rule graph is not drawn: {err}."
        section.notes.append(note)
        print(f"ga report: {note}", file=sys.stderr)  # the job's log: a missing picture must not pass unnoticed
        return section
    section.figures.append(Figure(png, "The pipeline's rules and their dependencies."))
    return section


def data_section(layout: RunLayout) -> Section:
    section = Section(
        "Data", "What the generator was trained on: the pretraining corpus and the instruction-tuning mixture."
    )
    documents = read_json_if_exists(manifest_of(layout.pretrain_documents))
    if documents is None:
        section.notes.append("No pretraining documents (stage pretrain_documents did not run).")
    else:
        sources = documents.get("sources", [])
        total = sum(row.get("tokens") or 0 for row in sources)
        section.tables.append(
            Table(
                ("source", "documents", "tokens", "share of tokens (%)"),
                [
                    (
                        row.get("source"),
                        row.get("documents"),
                        row.get("tokens"),
                        PERCENT * row["tokens"] / total if total and row.get("tokens") is not None else None,
                    )
                    for row in sources
                ],
                caption=f"Pretraining documents by source ({documents.get('params', {}).get('source', 'source unknown')})",
            )
        )
    splits = [(split, read_json_if_exists(manifest_of(layout.pretrain_split(split)))) for split in SPLITS]
    rows = [
        (
            split,
            m.get("examples"),
            m.get("documents"),
            m.get("tokens"),
            *(
                m.get("layout", {}).get(key)
                for key in ("seq_len", "window", "completion_windows", "reconstruction_windows")
            ),
            m.get("dropped_tail_tokens"),
        )
        for split, m in splits
        if m is not None
    ]
    if rows:
        section.tables.append(
            Table(
                (
                    "split",
                    "examples",
                    "documents",
                    "tokens",
                    "sequence length",
                    "window",
                    "completion windows",
                    "reconstruction windows",
                    "dropped tail tokens",
                ),
                rows,
                caption="Pretraining examples (packed sequences)",
            )
        )
    else:
        section.notes.append("No pretraining examples (stage pretrain_data did not run).")
    sources = [read_json_if_exists(path) for path in sft_source_manifests(layout)]
    if sources:
        section.tables.append(
            Table(
                ("dataset", "records", "QA pairs", "licence", "dropped records"),
                [
                    (
                        m.get("dataset"),
                        m.get("records"),
                        m.get("qa_pairs"),
                        m.get("licence"),
                        sum((m.get("drops") or {}).values()),
                    )
                    for m in sources
                ],
                caption="Instruction-tuning sources (records as prepared, before the mixture)",
            )
        )
    mixture, drops = [], []
    for split in SPLITS:
        manifest = read_json_if_exists(manifest_of(layout.sft_split(split)))
        if manifest is None:
            continue
        for row in manifest.get("datasets", []):
            mixture.append(
                (
                    split,
                    row.get("dataset"),
                    row.get("records"),
                    row.get("examples"),
                    row.get("qa_pairs"),
                    row.get("context_tokens_mean"),
                    row.get("context_tokens_p95"),
                    row.get("conversation_tokens_mean"),
                    row.get("loss_tokens"),
                    row.get("windows_mean"),
                )
            )
        drops += [
            (split, row.get("dataset"), row.get("stage"), row.get("reason"), row.get("count"))
            for row in manifest.get("drops", [])
        ]
    if mixture:
        section.tables.append(
            Table(
                (
                    "split",
                    "dataset",
                    "records",
                    "examples",
                    "QA pairs",
                    "context tokens (mean)",
                    "context tokens (p95)",
                    "conversation tokens (mean)",
                    "loss tokens",
                    "windows (mean)",
                ),
                mixture,
                caption="Instruction-tuning mixture",
            )
        )
        if drops:
            section.tables.append(
                Table(
                    ("split", "dataset", "stage", "reason", "records dropped"),
                    drops,
                    caption="Records left out of the mixture, and why",
                )
            )
    else:
        section.notes.append("No instruction-tuning mixture (stage sft_data did not run).")
    return section


def _arm_table(validation: dict, caption: str, part_name: str) -> Table:
    """Validation perplexity by part (rows) and adapter arm (columns): own context, another record's, none."""
    cells: dict[str, dict[str, float]] = {}
    for key, value in validation.items():
        match = plots.VALIDATION_KEY.match(key)
        if match:
            cells.setdefault(match.group(2), {})[match.group(1)] = value
    return Table(
        (part_name, *(f"{arm} adapter" for arm in VALIDATION_ARMS)),
        [(part, *(arms.get(arm) for arm in VALIDATION_ARMS)) for part, arms in cells.items()],
        caption=caption,
        digits=2,
    )


def _paired_table(validation: dict, part_name: str) -> Table | None:
    """Per held-out example: is the own adapter's NLL lower than the other one's? Counts and sign test, by part."""
    cells: dict[str, dict[str, float]] = {}
    for key, value in validation.items():
        match = PAIRED_KEY.match(key)
        if match:
            cells.setdefault(match.group(1), {})[match.group(2)] = value
    if not cells:
        return None
    return Table(
        (part_name, "examples", "own adapter lower", "sign test p"),
        [
            (part, c.get("examples"), c.get("lower"), None if c.get("sign_p") is None else f"{c['sign_p']:.2g}")
            for part, c in cells.items()
        ],
        caption="Own vs other adapter, example by example (two-sided sign test)",
    )


def training_section(log: TrainingLog | None, stage: str, title: str, intro: str, plots_dir: Path) -> Section:
    section = Section(title, intro)
    if log is None or not log.train:
        section.notes.append(f"No training log (stage {stage} did not run).")
        return section
    png = plots.training_curves(log.train, log.val, title, plots_dir / f"{stage}.png")
    section.figures.append(
        Figure(
            png,
            f"{title}: training loss per part and learning rate by step; validation "
            "perplexity with the own / other / none adapter at each validation.",
        )
    )
    validation = log.validation
    if validation is None:
        section.notes.append(f"No validation.json (stage {stage} did not finish).")
        return section
    speeds = [row["tokens_per_s"] for row in log.train if row.get("tokens_per_s") is not None]
    section.tables.append(
        Table(
            (
                "steps",
                "skipped steps",
                "trainable parameters",
                "frozen parameters",
                "processes",
                "ZeRO stage",
                "tokens / s (mean)",
            ),
            [
                (
                    validation.get("step"),
                    validation.get("skipped_steps"),
                    validation.get("trainable_parameters"),
                    validation.get("frozen_parameters"),
                    validation.get("world_size"),
                    validation.get("zero_stage"),
                    sum(speeds) / len(speeds) if speeds else None,
                )
            ],
            caption="Run",
        )
    )
    part_name = "part" if stage == "pretrain" else "dataset"
    section.tables.append(_arm_table(validation, "Held-out perplexity at the end, by adapter", part_name))
    paired = _paired_table(validation, part_name)
    if paired is not None:
        section.tables.append(paired)
    paper_cells: dict[str, dict[str, float]] = {}
    for key, value in validation.items():
        match = PAPER_ARM_KEY.match(key)
        if match:
            paper_cells.setdefault(match.group(2), {})["none" if match.group(1) else "own"] = value
    if paper_cells:
        section.tables.append(
            Table(
                ("target", "own adapter", "no adapter"),
                [(part, arms.get("own"), arms.get("none")) for part, arms in paper_cells.items()],
                caption="Held-out perplexity, the paper's Table 2 protocol",
                digits=2,
            )
        )
    answer_f1 = (validation.get("answer_f1") or {}).get("per_dataset") or {}
    if answer_f1:
        section.tables.append(
            Table(
                ("dataset", "records", *(f"F1 {arm} adapter (%)" for arm in VALIDATION_ARMS)),
                [
                    (
                        dataset,
                        row.get("records"),
                        *(
                            None if row.get(f"{arm}_f1") is None else PERCENT * row[f"{arm}_f1"]
                            for arm in VALIDATION_ARMS
                        ),
                    )
                    for dataset, row in answer_f1.items()
                ],
                caption="Greedy-answer F1 on held-out records",
            )
        )
    return section


def knowledge_section(layout: RunLayout, plots_dir: Path) -> Section:
    import polars as pl

    from ga.eval.knowledge.paper import paper_knowledge_qa

    section = Section(
        "Evaluation: knowledge QA by context length",
        "F1 against the single shortest reference is the paper's scoring, so the paper's published F1 "
        "stands beside it; F1 / EM take the max over all references. The paper's column holds the "
        "published number of this run's base model only; other models' numbers are listed below.",
    )
    table = read_parquet_if_exists(layout.knowledge_summary)
    if table is None:
        section.notes.append("No knowledge-QA results (stage knowledge_summary did not run).")
        return section
    paper = paper_knowledge_qa()
    png = plots.knowledge_f1(table, paper, plots_dir / "knowledge_f1.png")
    section.figures.append(
        Figure(
            png,
            "F1 (shortest reference) against context length per method; dashed: the "
            "paper's published curves for the same benchmark (their model named).",
        )
    )
    section.tables.append(
        Table(
            (
                "benchmark",
                "method",
                "k",
                "F1 (shortest ref)",
                "paper F1 (shortest ref)",
                "F1",
                "EM",
                "ROUGE-L recall",
                "questions scored",
                "contexts",
            ),
            [
                (
                    row["benchmark"],
                    row["method"],
                    row["length"],
                    row["f1_shortest"],
                    row["paper_f1_shortest"],
                    row["f1"],
                    row["em"],
                    row["rouge_l_recall"],
                    f"{row['scored']}/{row['questions']}",
                    f"{row['contexts_evaluated']}/{row['contexts_available']}",
                )
                for row in table.iter_rows(named=True)
            ],
            caption="Results (percent)",
        )
    )
    benchmarks = set(table["benchmark"].to_list())
    published = paper.filter(pl.col("benchmark").is_in(sorted(benchmarks))).sort(
        "model", "benchmark", "method", "length", nulls_last=True
    )
    if published.height:
        section.tables.append(
            Table(
                ("model", "benchmark", "method", "k", "F1 (shortest ref)"),
                [
                    (row["model"], row["benchmark"], row["method"], row["length"], row["f1"])
                    for row in published.iter_rows(named=True)
                ],
                caption="Published by the paper for these benchmarks (k empty: the method never sees the context)",
            )
        )
    missing = sorted(benchmarks - set(paper["benchmark"].to_list()))
    if missing:
        section.notes.append(f"The paper published no numbers for {', '.join(missing)}.")
    return section


def icl_section(layout: RunLayout, plots_dir: Path) -> Section:
    from ga.eval.icl.results import AVERAGES_FILE

    section = Section(
        "Evaluation: in-context learning",
        "Accuracy (percent) averaged over tasks, by the number of demonstrations k; zero_shot sees none (k = 0).",
    )
    averages = read_parquet_if_exists(layout.icl_summary / AVERAGES_FILE)
    if averages is None:
        section.notes.append("No in-context-learning results (stage icl_summary did not run).")
        return section
    section.notes.append(
        "resources/paper/ holds no published in-context-learning (MetaICL) numbers, so the paper's column is empty."
    )
    png = plots.icl_accuracy(averages, plots_dir / "icl_accuracy.png")
    section.figures.append(Figure(png, "Mean accuracy over tasks (all, and each kind) against k, per method."))
    ks = sorted(set(averages["k"].to_list()))
    grid: dict[tuple, dict[int, float]] = {}
    for row in averages.sort("benchmark", "tasks_of", "method").iter_rows(named=True):
        grid.setdefault((row["benchmark"], row["tasks_of"], row["method"]), {})[row["k"]] = row["accuracy"]
    section.tables.append(
        Table(
            ("benchmark", "tasks", "method", *(f"k={k}" for k in ks), "paper"),
            [(*key, *(by_k.get(k) for k in ks), None) for key, by_k in grid.items()],
            caption="Accuracy (percent), mean over tasks",
        )
    )
    return section


def msc_section(layout: RunLayout) -> Section:
    section = Section(
        "Evaluation: personalization (multi-session chat)",
        "The paper's Table 1: F1 and the cost of answering (inference TFLOPs per query, extra floats "
        "stored per user), beside the published numbers where this run's base model is the paper's.",
    )
    table = read_parquet_if_exists(layout.msc_summary)
    if table is None:
        section.notes.append("No personalization results (stage msc_summary did not run).")
        return section
    section.tables.append(
        Table(
            ("benchmark", "method", "encoding", "F1", "paper F1", "ROUGE-L recall", "EM", "questions scored"),
            [
                (
                    row["benchmark"],
                    row["method"],
                    row["encode_strategy"],
                    row["f1"],
                    row["paper_f1"],
                    row["rouge_l_recall"],
                    row["em"],
                    f"{row['scored']}/{row['questions']}",
                )
                for row in table.iter_rows(named=True)
            ],
            caption="Results (percent)",
        )
    )
    if "other_user_adapter" in table["method"].to_list():
        section.notes.append(
            "other_user_adapter is this project's control, not a paper method: each conversation's "
            "questions answered with another user's adapter. Its F1 is what the adapter scores "
            "without this user's facts; generative_adapter's F1 above it is what the adapter takes "
            "from the conversation."
        )
    section.tables.append(
        Table(
            (
                "benchmark",
                "method",
                "TFLOPs / query",
                "paper TFLOPs / query",
                "storage / user (floats)",
                "paper storage / user",
                "context tokens",
                "seconds / query",
                "peak memory (MB)",
            ),
            [
                (
                    row["benchmark"],
                    row["method"],
                    row["per_query_tflops"],
                    row["paper_tflops_per_query"],
                    row["storage_floats"],
                    row["paper_storage_floats"],
                    row["context_tokens"],
                    row["per_query_seconds"],
                    row["peak_memory_mb"],
                )
                for row in table.iter_rows(named=True)
            ],
            caption="Cost table",
            digits=4,
        )
    )
    return section


def costs_section(layout: RunLayout) -> Section:
    import polars as pl

    from ga.eval.icl.results import JOBS_FILE

    section = Section(
        "Measured costs",
        "Means per context (knowledge QA) or per job (in-context learning): FLOPs "
        "to contextualize (encode the context, or fine-tune on it), FLOPs and "
        "seconds per query, peak memory, floats stored per context.",
    )
    columns = (
        "contextualization FLOPs",
        "contextualization s",
        "FLOPs / query",
        "s / query",
        "peak memory (MB)",
        "storage (floats)",
    )
    knowledge = read_parquet_if_exists(layout.knowledge_summary)
    if knowledge is not None:
        section.tables.append(
            Table(
                ("benchmark", "method", "k", *columns),
                [
                    (
                        row["benchmark"],
                        row["method"],
                        row["length"],
                        row["contextualize_flops"],
                        row["contextualize_seconds"],
                        row["per_query_flops"],
                        row["per_query_seconds"],
                        row["peak_memory_mb"],
                        row["storage_floats"],
                    )
                    for row in knowledge.iter_rows(named=True)
                ],
                caption="Knowledge QA",
                digits=3,
            )
        )
    jobs = read_parquet_if_exists(layout.icl_summary / JOBS_FILE)
    if jobs is not None:
        from ga.eval.results import COST_COLUMNS

        means = (
            jobs.group_by("benchmark", "method", "k")
            .agg(pl.col(c).mean() for c in COST_COLUMNS)
            .sort("benchmark", "method", "k")
        )
        section.tables.append(
            Table(
                ("benchmark", "method", "k", *columns),
                [tuple(row) for row in means.select("benchmark", "method", "k", *COST_COLUMNS).iter_rows()],
                caption="In-context learning (mean over jobs)",
                digits=3,
            )
        )
    if not section.tables:
        section.notes.append("No evaluation ran, so no costs were measured.")
    section.notes.append("Personalization costs are in its cost table above; training and stage costs below.")
    return section


def stages_section(benchmarks: dict[str, dict], plots_dir: Path) -> Section:
    section = Section(
        "Stage timings and peak memory",
        "Measured by Snakemake (`benchmark:` files of each rule): "
        "wall time summed over a rule's jobs, and the peak resident "
        "memory of its largest job.",
    )
    rows = stage_costs(benchmarks)
    if not rows:
        section.notes.append("No benchmark files (the stages did not run through Snakemake).")
        return section
    png = plots.stage_times(rows, plots_dir / "stages.png")
    section.figures.append(Figure(png, "Wall time and peak memory per rule."))
    section.tables.append(
        Table(
            ("rule", "jobs", "wall time, all jobs (s)", "longest job (s)", "peak RSS (MB)"),
            [(r["rule"], r["jobs"], r["wall_s"], r["longest_s"], r["max_rss_mb"]) for r in rows],
        )
    )
    return section


def config_section(layout: RunLayout) -> Section:
    section = Section(
        "Config and versions",
        "The resolved config of the run (files, overrides and defaults) and the "
        "versions of the packages that drew this report.",
    )
    section.tables.append(Table(("package", "version"), package_versions()))
    if layout.config.is_file():
        section.preformatted = layout.config.read_text()
    else:
        section.notes.append(f"{layout.config} is missing.")
    return section


# ------------------------------------------------------------------ the page


def report_sections(inputs: ReportInputs, plots_dir: Path) -> list[Section]:
    from ga.report.summary import read_benchmarks

    layout = RunLayout(Path(inputs.run_dir))
    benchmarks = read_benchmarks(inputs.benchmarks_dir) if Path(inputs.benchmarks_dir).is_dir() else {}
    return [
        dag_section(inputs, plots_dir),
        data_section(layout),
        training_section(
            read_training_log(layout, "pretrain"),
            "pretrain",
            "Pretraining",
            "Reconstruction and completion on the pretraining corpus (docs/method.md#pretraining-objective).",
            plots_dir,
        ),
        training_section(
            read_training_log(layout, "finetune"),
            "finetune",
            "Instruction tuning",
            "Answer loss on the instruction-tuning mixture, per dataset.",
            plots_dir,
        ),
        knowledge_section(layout, plots_dir),
        icl_section(layout, plots_dir),
        msc_section(layout),
        costs_section(layout),
        stages_section(benchmarks, plots_dir),
        config_section(layout),
    ]


def write_report_page(
    inputs: ReportInputs, run_name: str, base_model: str, html: str | Path, plots_dir: str | Path
) -> dict:
    """index.html (self-contained) and plots/*.png of the run, each written at once (no partial output)."""
    from ga.io import atomic_dir, write_text
    from ga.report.html import render_html

    with atomic_dir(Path(plots_dir)) as tmp:
        sections = report_sections(inputs, tmp)
        page = render_html(
            f"Generative Adapter: run `{run_name}`",
            f"Base model {base_model}; generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}.",
            sections,
        )
        figures = sorted(p.name for p in tmp.glob("*.png"))
    write_text(page, html)
    return {"html": str(html), "figures": figures, "notes": [note for section in sections for note in section.notes]}
