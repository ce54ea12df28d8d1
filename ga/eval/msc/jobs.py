"""The personalization evaluation as pipeline jobs: what a stage calls, and what each job depends on.

`config` is the run config: these functions read `config.msc_eval` (MscEvalConfig), `config.sft_sources.synthetic_chat`
(the twin's generation settings and the conversation layout instruction tuning used), `config.base_model` and
`config.run_name`.

Jobs (one rule each; wildcards in brackets):
  conversations [benchmark]                  `write_benchmark_conversations` -> conversations Parquet file
                                             params: `conversations_depends_on`; input: the base model folder
  evaluation [benchmark, batch, method]      `evaluate_batch` -> results folder (predictions.parquet, costs.parquet,
                                             summary.json); params: `evaluation_depends_on`; inputs: the base model
                                             folder, the conversations file, the generator folder
                                             (generative_adapter, other_user_adapter); batches: `batch_ids`
  summary                                    `collect_results` -> Table 1 as Parquet and Markdown; params:
                                             `summary_depends_on`; inputs: every evaluation folder
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ga.eval.msc.config import BENCHMARKS, MscEvalConfig
from ga.eval.msc.methods import REGISTRY

CACHE_SUBDIR = "eval"
"""Hub downloads are cached under $GA_CACHE_DIR/eval (default ~/.cache/ga/eval), as knowledge QA's are."""
PAPER_MODELS = {"mistralai/Mistral-7B-Instruct-v0.2": "Mistral-7B-Instruct"}
"""Base models whose MSC numbers the paper published (hub id -> the model name in resources/paper/msc.yaml)."""


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}, expected one of {list(BENCHMARKS)}")


def session_layout(config):
    """The conversation layout of instruction tuning (`sft_sources.synthetic_chat`), for both benchmarks."""
    from ga.data.sft.embedded.synthetic_chat import session_layout as layout

    return layout(config.sft_sources.synthetic_chat)


def _layout_settings(config) -> dict:
    chat = config.sft_sources.synthetic_chat
    return {
        "session_header": chat.session_header,
        "user_label": chat.user_label,
        "assistant_label": chat.assistant_label,
        "session_separator": chat.session_separator,
    }


# ---------------------------------------------------------------- what each job depends on
def conversations_depends_on(config, benchmark: str) -> dict:
    _check_benchmark(benchmark)
    source = (
        config.msc_eval.msc.depends_on()
        if benchmark == "msc"
        else {"synthetic_chat": config.sft_sources.synthetic_chat.depends_on()}
    )
    return {
        "base_model": config.base_model.depends_on(),
        "benchmark": benchmark,
        "source": source,
        "layout": _layout_settings(config),
    }


def evaluation_depends_on(config, benchmark: str, method: str, batch: str | int) -> dict:
    """Generation settings, the batching, and the method's own settings only (`REGISTRY`; its model files are rule
    inputs)."""
    cfg: MscEvalConfig = config.msc_eval
    own = REGISTRY[method].settings(config, {"benchmark": benchmark, "batch": str(batch), "method": method})
    return {
        "base_model": config.base_model.depends_on(),
        "benchmark": benchmark,
        "method": method,
        "batch": int(batch),
        "conversations_per_batch": cfg.conversations_per_batch,
        "max_conversations": cfg.max_conversations,
        "max_new_tokens": cfg.max_new_tokens,
        "batch_size": cfg.batch_size,
        "max_batch_tokens": cfg.max_batch_tokens,
        **own,
    }


def summary_depends_on(config) -> dict:
    return {"base_model": config.base_model.id}


def expected_conversations(config, benchmark: str) -> int:
    """Conversations the benchmark holds, known before any download: `msc_eval.msc.conversations` (checked by the
    conversations job) or `sft_sources.synthetic_chat.eval_personas`."""
    _check_benchmark(benchmark)
    if benchmark == "msc":
        return config.msc_eval.msc.conversations
    return config.sft_sources.synthetic_chat.eval_personas


def evaluated_conversations(config, benchmark: str) -> int:
    cap = config.msc_eval.max_conversations
    total = expected_conversations(config, benchmark)
    return total if cap is None else min(cap, total)


def batch_ids(config, benchmark: str) -> list[int]:
    """The batch wildcard's values for `benchmark`: 0 .. batches - 1."""
    from ga.eval.msc.conversations import batch_count

    return list(range(batch_count(evaluated_conversations(config, benchmark), config.msc_eval.conversations_per_batch)))


# ---------------------------------------------------------------- the jobs
def benchmark_chats(config, benchmark: str, cache_dir: str | Path | None = None, fetch_file=None) -> tuple[list, dict]:
    """(the benchmark's Chats in source order, what to record about the source)."""
    from ga.eval.msc import sources

    _check_benchmark(benchmark)
    if benchmark == "synthetic_chat":
        chat_cfg = config.sft_sources.synthetic_chat
        return sources.twin_chats(chat_cfg), {
            "dataset": benchmark,
            "generated_from": "sft_sources.synthetic_chat",
            "settings": chat_cfg.depends_on(),
        }
    from ga.base import default_cache_dir
    from ga.data.hub import fetch_hub_file
    from ga.io import sha256_file
    from ga.section import ConfigError

    cfg = config.msc_eval.msc
    path = sources.download(cfg, cache_dir or default_cache_dir() / CACHE_SUBDIR, fetch_file or fetch_hub_file)
    read = sources.chats(sources.read_native(path), cfg)
    if len(read.chats) != cfg.conversations:
        raise ConfigError(
            f"msc_eval.msc.conversations: {path} holds {len(read.chats)} conversations, the config "
            f"says {cfg.conversations} (the job batches are planned from it): set it to "
            f"{len(read.chats)}"
        )
    return read.chats, {
        **sources.provenance(cfg).to_dict(),
        "sha256": sha256_file(path),
        "blank_turns": read.blank_turns,
        "speakers_by_position": read.speakers_by_position,
    }


def write_benchmark_conversations(
    config,
    benchmark: str,
    base_model_dir: str | Path,
    output: str | Path,
    cache_dir: str | Path | None = None,
    fetch_file=None,
) -> dict:
    """The conversations job: every conversation of `benchmark` laid out with the SFT layout, counted in the base
    model's tokens, written to `output` (ga/eval/msc/conversations.py); returns what to log."""
    from ga.data.tokenize import DocumentTokenizer
    from ga.eval.msc.conversations import conversations, write_conversations

    tokenizer = DocumentTokenizer.load(base_model_dir)
    chats, source = benchmark_chats(config, benchmark, cache_dir, fetch_file)
    items = conversations(chats, benchmark, session_layout(config), lambda text: tokenizer.count_tokens([text])[0])
    write_conversations(items, output)
    tokens = [item.num_tokens for item in items]
    return {
        "benchmark": benchmark,
        "conversations": len(items),
        "questions": sum(len(c.questions) for c in items),
        "sessions": sum(len(c.sessions) for c in items),
        "mean_tokens": sum(tokens) / len(tokens) if tokens else None,
        "max_tokens": max(tokens, default=None),
        "source": source,
    }


def evaluate_batch(
    config,
    benchmark: str,
    method: str,
    batch: str | int,
    base_model_dir: str | Path,
    conversations_file: str | Path,
    output: str | Path,
    generator_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """The evaluation job: batch `batch` of the benchmark's first `max_conversations` conversations, every one
    contextualized by `method` and its questions answered, scored and costed into the folder `output`
    (ga/eval/msc/results.py); returns the job's summary."""
    from types import SimpleNamespace

    from ga.eval.family import check_method_inputs, open_models
    from ga.eval.msc.conversations import batch_conversations, read_conversations
    from ga.eval.msc.results import evaluate_conversations
    from ga.eval.results import say_failures

    cfg: MscEvalConfig = config.msc_eval
    entry = REGISTRY[method]
    check_method_inputs("msc_eval", entry, SimpleNamespace(generator=generator_dir))
    everything = read_conversations(conversations_file)
    evaluated = everything if cfg.max_conversations is None else everything[: cfg.max_conversations]
    chosen = batch_conversations(evaluated, int(batch), cfg.conversations_per_batch)
    models = open_models(
        config,
        base_model_dir,
        getattr(cfg.resources, method),
        generator_dir=generator_dir if entry.reads_generator else None,
    )
    built = entry.build(cfg, models, donors=other_users(evaluated) if method == "other_user_adapter" else None)
    job = {
        "benchmark": benchmark,
        "method": method,
        "encode_strategy": cfg.encode_strategy if entry.reads_generator else None,
        "batch": int(batch),
        "conversations_per_batch": cfg.conversations_per_batch,
        "max_conversations": cfg.max_conversations,
        "conversations_available": len(everything),
        "conversations_evaluated": len(chosen),
    }
    summary = evaluate_conversations(built, chosen, output, job, progress=progress)
    say_failures(summary, f"ga msc_eval: {benchmark}/{batch}/{method}", output)
    return summary


def other_users(conversations: Sequence) -> dict:
    """The control's donors: each evaluated conversation's id -> the next evaluated conversation (the last's: the
    first), another user's. Needs two conversations at least."""
    from ga.section import ConfigError

    if len(conversations) < 2:
        raise ConfigError("msc_eval: method other_user_adapter needs at least 2 conversations (max_conversations)")
    return {
        conversation.context_id: conversations[(index + 1) % len(conversations)]
        for index, conversation in enumerate(conversations)
    }


def collect_results(
    config, result_folders: Sequence[str | Path], table_path: str | Path, markdown_path: str | Path
) -> dict:
    """The summary job: every evaluation folder pooled by benchmark x method x strategy into the paper's Table 1
    (Parquet and Markdown), beside the published numbers when the base model is one the paper evaluated."""
    from ga.eval.msc.results import markdown_table, paper_msc, pooled_summaries, summary_table
    from ga.io import atomic_file, write_text

    table = summary_table(pooled_summaries(result_folders), paper_msc(), PAPER_MODELS.get(config.base_model.id))
    with atomic_file(table_path) as tmp:
        table.write_parquet(tmp)
    write_text(markdown_table(table, f"Personalization on multi-session chats: run `{config.run_name}`"), markdown_path)
    return {"rows": table.height, "jobs": len(result_folders)}
