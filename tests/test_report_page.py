"""The run report's page (ga/report/): built from a run folder made of the stages' real table writers, it has every
section's tables and figures, shows cells the paper did not publish as missing, and opens in a real headless
browser (Debian's Chromium) without a broken image, a script error or an empty table, for the smoke run and in
Snakemake's own report."""

from __future__ import annotations

import base64
import html
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from workflow_support import REPO, explain, snakemake

from ga.layout import RunLayout
from ga.report.content import MISSING
from ga.run_config import RunConfig

PAPER_MODEL = "Mistral-7B-Instruct"


class PageParser(HTMLParser):
    """Tables (caption, header, rows of cell texts), images (src) and section headings of a page."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.headings = [], [], []
        self._text, self._row, self._in = None, None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"caption": "", "header": [], "rows": []})
        elif tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th", "caption", "h2"):
            self._text, self._in = "", tag

    def handle_data(self, data):
        if self._text is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == self._in:
            text, self._text, self._in = self._text.strip(), None, None
            if tag == "caption":
                self.tables[-1]["caption"] = text
            elif tag == "h2":
                self.headings.append(text)
            else:
                self._row.append(text)
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if table["header"]:
                table["rows"].append(self._row)
            else:
                table["header"] = self._row
            self._row = None


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text())
    return parser


def table(page: PageParser, caption: str, column: str | None = None) -> list[dict]:
    """The rows (header -> cell) of the one table whose caption starts with `caption` (and that has `column`)."""
    found = [t for t in page.tables if t["caption"].startswith(caption) and (column is None or column in t["header"])]
    assert len(found) == 1, f"table {caption!r} missing; tables: {[t['caption'] for t in page.tables]}"
    return [dict(zip(found[0]["header"], row)) for row in found[0]["rows"]]


def png_size(data_uri: str) -> tuple[int, int]:
    from PIL import Image

    assert data_uri.startswith("data:image/png;base64,"), data_uri[:40]
    with Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))) as image:
        return image.size


# ------------------------------------------------------------------ a run folder from the stages' own writers


def knowledge_summary(benchmark: str, method: str, length: int, f1: float) -> dict:
    return {
        "benchmark": benchmark,
        "method": method,
        "length": length,
        "f1": f1,
        "em": 0.0,
        "f1_shortest": f1,
        "em_shortest": 0.0,
        "rouge_l_recall": f1,
        "questions": 10,
        "scored": 10,
        "contexts_evaluated": 2,
        "contexts_available": 2,
        "context_tokens": length,
        "contextualize_flops": 1e12,
        "contextualize_seconds": 0.5,
        "per_query_flops": 2e10,
        "per_query_seconds": 0.1,
        "peak_memory_mb": 900.0,
        "storage_floats": 1.1e6,
    }


def icl_summary(method: str, task: str, kind: str, k: int, seed: int, accuracy: float) -> dict:
    return {
        "benchmark": "synthetic_icl",
        "method": method,
        "task": task,
        "kind": kind,
        "k": k,
        "seed": seed,
        "accuracy": accuracy,
        "questions": 8,
        "scored": 8,
        "k_drawn": k,
        "contextualize_flops": 1e9,
        "per_query_flops": 1e9,
        "per_query_seconds": 0.05,
        "peak_memory_mb": 500.0,
        "storage_floats": 0.0,
    }


def msc_summary(method: str, f1: float) -> dict:
    return {
        "benchmark": "msc",
        "method": method,
        "encode_strategy": None,
        "f1": f1,
        "rouge_l_recall": f1,
        "em": 0.0,
        "questions": 6,
        "scored": 6,
        "conversations_evaluated": 2,
        "conversations_available": 2,
        "batches": 1,
        "per_query_flops": 3e10,
        "storage_floats": 1e6,
        "contextualize_flops": 5e10,
        "context_tokens": 300.0,
        "per_query_seconds": 0.2,
        "peak_memory_mb": 800.0,
        "outcomes": {"answered": 6},
    }


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def make_run(root: Path) -> tuple[Path, Path]:
    """runs/r of a small run (data manifests, training logs, the three evaluation summaries, benchmark timings)."""
    import polars as pl

    from ga.eval.icl.results import write_icl_summary
    from ga.eval.knowledge.paper import paper_knowledge_qa
    from ga.eval.knowledge.results import summary_table
    from ga.eval.msc import results as msc_results

    run = root / "runs" / "r"
    bench = RunLayout(run).benchmarks
    config = RunConfig.load(REPO / "config" / "smoke.yaml").to_dict()
    config["run_name"] = "r"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    write_json(
        run / "data/pretrain/documents/manifest.json",
        {
            "params": {"source": "embedded"},
            "tokens": 300,
            "sources": [
                {"source": "fictional_entities", "documents": 5, "tokens": 200},
                {"source": "python_docs", "documents": 2, "tokens": 100},
            ],
        },
    )
    layout = {"seq_len": 64, "window": 16, "completion_windows": 2, "reconstruction_windows": 2}
    for split, examples in (("train", 4), ("val", 1)):
        write_json(
            run / f"data/pretrain/{split}/manifest.json",
            {"examples": examples, "documents": 3, "tokens": 64 * examples, "layout": layout, "dropped_tail_tokens": 5},
        )
        write_json(
            run / f"data/sft/{split}/manifest.json",
            {
                "datasets": [
                    {
                        "dataset": "entity_qa",
                        "records": 3,
                        "examples": 3,
                        "qa_pairs": 9,
                        "context_tokens_mean": 100.0,
                        "context_tokens_p95": 120,
                        "conversation_tokens_mean": 40.0,
                        "loss_tokens": 30,
                        "windows_mean": 7.5,
                    }
                ],
                "drops": [{"dataset": "entity_qa", "stage": "sft_data", "reason": "qa_pair_over_window", "count": 1}],
            },
        )
    write_json(
        run / "data/sft/sources/entity_qa/manifest.json",
        {"dataset": "entity_qa", "records": 6, "qa_pairs": 18, "licence": "Apache-2.0", "drops": {}},
    )
    for stage, parts in (("pretrain", ("completion", "reconstruction")), ("finetune", ("entity_qa",))):
        rows = [
            {
                "kind": "train",
                "step": step,
                "loss": 3.0 / step,
                "lr": 1e-3 * step,
                **{f"{part}_loss": 3.1 / step for part in parts},
                "tokens_per_s": 100.0,
            }
            for step in (1, 2, 3)
        ]
        validation = {
            f"{arm}_{part}_ppl": ppl for part in parts for arm, ppl in (("own", 10.0), ("other", 12.0), ("none", 40.0))
        }
        rows += [{"kind": "val", "step": step, **validation} for step in (2, 3)]
        (run / stage).mkdir()
        (run / stage / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        extra = (
            {"paper_completion_ppl": 9.0, "paper_none_completion_ppl": 30.0}
            if stage == "pretrain"
            else {
                "answer_f1": {
                    "per_dataset": {"entity_qa": {"own_f1": 0.5, "other_f1": 0.25, "none_f1": 0.0, "records": 4}}
                },
                "own_vs_other_entity_qa_lower": 13,
                "own_vs_other_entity_qa_examples": 16,
                "own_vs_other_entity_qa_sign_p": 0.021270751953125,
            }
        )
        write_json(run / stage / "validation.json", {"step": 3, "trainable_parameters": 1000, **validation, **extra})
    # squad k=512 is published for Mistral-7B-Instruct (48.8), k=640 is not
    knowledge = summary_table(
        [
            knowledge_summary("squad", "generative_adapter", 512, 40.0),
            knowledge_summary("squad", "generative_adapter", 640, 35.0),
            knowledge_summary("squad", "in_context", 512, 45.0),
        ],
        paper_knowledge_qa(),
        PAPER_MODEL,
    )
    (run / "eval/knowledge").mkdir(parents=True)
    knowledge.write_parquet(run / "eval/knowledge/summary.parquet")
    write_icl_summary(
        [
            icl_summary(method, task, kind, k, seed, accuracy)
            for method, ks in (("zero_shot", (0,)), ("generative_adapter", (4, 16)))
            for task, kind, accuracy in (("t1", "classification", 50.0), ("t2", "generation", 25.0))
            for k in ks
            for seed in (1, 2)
        ],
        run / "eval/icl/summary",
        "ICL",
    )
    msc = msc_results.summary_table(
        [
            msc_summary("generative_adapter", 30.0),
            msc_summary("closed_book", 5.0),
            msc_summary("other_user_adapter", 20.0),
        ],
        msc_results.paper_msc(),
        PAPER_MODEL,
    )
    (run / "eval/msc").mkdir(parents=True)
    msc.write_parquet(run / "eval/msc/summary.parquet")
    bench.mkdir(parents=True)
    for name, seconds in (
        ("pretrain", 12.5),
        ("knowledge_eval.squad.in_context.512", 3.0),
        ("knowledge_eval.squad.in_context.640", 4.0),
    ):
        (bench / f"{name}.tsv").write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:12\t321.0\n")
    assert pl.read_parquet(run / "eval/msc/summary.parquet").height == 3
    return run, bench


@pytest.fixture(scope="module")
def synthetic_page(tmp_path_factory) -> tuple[Path, PageParser]:
    from ga.cli import main

    root = tmp_path_factory.mktemp("run")
    run, _ = make_run(root)
    out = root / "page"
    assert main(["report-page", str(run), "--out", str(out)]) == 0  # runs/r/benchmarks found in the run folder
    return out, parse_page(out / "index.html")


SECTIONS = (
    "Pipeline",
    "Data",
    "Pretraining",
    "Instruction tuning",
    "Evaluation: knowledge QA by context length",
    "Evaluation: in-context learning",
    "Evaluation: personalization (multi-session chat)",
    "Measured costs",
    "Stage timings and peak memory",
    "Config and versions",
)
FIGURES = ("pretrain.png", "finetune.png", "knowledge_f1.png", "icl_accuracy.png", "stages.png")
TABLES = (
    "Pretraining documents by source",
    "Pretraining examples",
    "Instruction-tuning sources",
    "Instruction-tuning mixture",
    "Records left out",
    "Held-out perplexity at the end",
    "Held-out perplexity, the paper's Table 2 protocol",
    "Own vs other adapter, example by example",
    "Greedy-answer F1",
    "Results (percent)",
    "Published by the paper",
    "Accuracy (percent), mean over tasks",
    "Cost table",
    "Knowledge QA",
    "In-context learning (mean over jobs)",
)


def test_page_has_every_section_table_and_figure(synthetic_page):
    out, page = synthetic_page
    assert page.headings == list(SECTIONS)
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == sorted(FIGURES)  # no DAG without a Snakefile
    assert len(page.images) == len(FIGURES)
    for src in page.images:
        width, height = png_size(src)
        assert width > 100 and height > 100
    for caption in TABLES:
        assert any(t["caption"].startswith(caption) for t in page.tables), caption
    assert all(t["rows"] and all(len(row) == len(t["header"]) for row in t["rows"]) for t in page.tables)
    assert table(page, "", "rule") == [
        {
            "rule": "knowledge_eval",
            "jobs": "2",
            "wall time, all jobs (s)": "7.0",
            "longest job (s)": "4.0",
            "peak RSS (MB)": "321.0",
        },
        {
            "rule": "pretrain",
            "jobs": "1",
            "wall time, all jobs (s)": "12.5",
            "longest job (s)": "12.5",
            "peak RSS (MB)": "321.0",
        },
    ]
    assert table(page, "Own vs other adapter", "dataset") == [
        {"dataset": "entity_qa", "examples": "16", "own adapter lower": "13", "sign test p": "0.021"}
    ]
    assert "run_name: r" in (out / "index.html").read_text()  # the config
    assert "The rule graph is not drawn: no Snakefile was given." in (out / "index.html").read_text()
    assert not list(out.glob(".*tmp-*")), "temporary files left behind"


def test_cells_the_paper_did_not_publish_are_shown_as_missing(synthetic_page):
    out, page = synthetic_page
    knowledge = {(row["method"], row["k"]): row for row in table(page, "Results (percent)", "k")}
    assert knowledge[("generative_adapter", "512")]["paper F1 (shortest ref)"] == "48.8"
    assert knowledge[("in_context", "512")]["paper F1 (shortest ref)"] == "45.4"
    assert knowledge[("generative_adapter", "640")]["paper F1 (shortest ref)"] == MISSING  # not published
    assert knowledge[("generative_adapter", "640")]["F1 (shortest ref)"] == "35.0"
    msc = {row["method"]: row for row in table(page, "Results (percent)", "encoding")}
    assert msc["generative_adapter"]["paper F1"] == "40.2" and msc["closed_book"]["paper F1"] == "8.1"
    assert msc["generative_adapter"]["encoding"] == MISSING
    assert msc["other_user_adapter"]["F1"] == "20.0" and msc["other_user_adapter"]["paper F1"] == MISSING  # our control
    assert "other_user_adapter is this project's control" in html.unescape((out / "index.html").read_text())
    costs = {row["method"]: row for row in table(page, "Cost table")}
    assert costs["closed_book"]["paper TFLOPs / query"] == MISSING  # published as null
    assert costs["generative_adapter"]["paper TFLOPs / query"] == "0.5050"
    icl = table(page, "Accuracy (percent), mean over tasks")
    assert icl and all(row["paper"] == MISSING for row in icl)  # resources/paper has no ICL numbers
    zero_shot = next(row for row in icl if row["method"] == "zero_shot" and row["tasks"] == "all")
    assert zero_shot["k=0"] == "37.5" and zero_shot["k=4"] == MISSING  # zero_shot never ran with demonstrations


def test_a_partial_run_gets_notes_not_empty_tables(tmp_path):
    from ga.report.build import ReportInputs, write_report_page

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    page = write_report_page(
        ReportInputs(run, RunLayout(run).benchmarks), "r", "tiny", tmp_path / "index.html", tmp_path / "plots"
    )
    parsed = parse_page(tmp_path / "index.html")
    assert parsed.headings == list(SECTIONS)
    assert [t["caption"] or t["header"][0] for t in parsed.tables] == ["package"]  # only the versions
    assert page["figures"] == [] and any("knowledge_summary did not run" in note for note in page["notes"])


# ------------------------------------------------------------------ the smoke run, in a real browser


@pytest.mark.slow
def test_smoke_report_opens_in_headless_chromium(smoke_run, tmp_path):
    from ga.testing.browser import check_page, find_chromium

    if find_chromium() is None:
        pytest.fail("Chromium is missing: bash scripts/setup.sh installs it (apt-get install chromium)")
    root, result = smoke_run
    assert result.returncode == 0, explain(result, root)
    page_file = root / "runs" / "smoke" / "report" / "index.html"
    page = parse_page(page_file)
    assert page.headings == list(SECTIONS)
    assert {p.name for p in (root / "runs" / "smoke" / "report" / "plots").glob("*.png")} == {"rulegraph.png", *FIGURES}
    check = check_page(page_file, tmp_path / "smoke-report.png")
    print(f"screenshot of the smoke run's report: {check.screenshot}")
    assert check.problems == [] and check.images == len(FIGURES) + 1 and check.tables >= len(TABLES) - 2, check
    assert check.screenshot.stat().st_size > 0

    # Snakemake's own report of the same run: the page and its figures, readable offline
    snakemake_report = tmp_path / "snakemake-report.html"
    made = snakemake(["--report", str(snakemake_report), "--configfile", "config/smoke.yaml"], root)
    assert made.returncode == 0, explain(made)
    for category, files in (
        ("Run report", ["runs/smoke/report/index.html"]),
        ("Figures", [Path(name).stem for name in sorted(["rulegraph.png", *FIGURES])]),
    ):
        screenshot = tmp_path / f"snakemake-report-{category.lower().replace(' ', '-')}.png"
        check = check_page(snakemake_report, screenshot, click_links=[category])
        print(f"screenshot of Snakemake's report, {category}: {check.screenshot}")
        assert check.problems == [], check
        assert all(name in check.text for name in files), check.text


def test_a_report_without_graphviz_says_why_on_the_page_and_in_the_log(tmp_path, monkeypatch, capsys):
    from ga.report.build import ReportInputs, write_report_page

    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no `dot` (nor anything else) on the PATH
    page = write_report_page(
        ReportInputs(run, tmp_path / "benchmarks" / "r", REPO / "Snakefile"),
        "r",
        "tiny",
        tmp_path / "index.html",
        tmp_path / "plots",
    )
    why = "The rule graph is not drawn: graphviz's `dot` is not installed (`bash scripts/setup.sh` installs it"
    assert any(note.startswith(why) for note in page["notes"])
    assert "rulegraph.png" not in page["figures"]
    assert why in html.unescape((tmp_path / "index.html").read_text())
    assert f"ga report: {why}" in capsys.readouterr().err
