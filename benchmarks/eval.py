"""Knowledge-QA serving cost: per-query latency of the generative adapter against closed-book answering and in-context
prompting with a long context, side by side in one process on SmolLM2-135M-Instruct.

    python benchmarks/eval.py [--context-tokens 4096] [--questions 3] [--repeats 2] [--max-new-tokens 20]
                              [--generator DIR] [--threads 1]

The context is about --context-tokens base-model tokens of offline text (the standard library's documentation
topics, as ga.tiny trains its tokenizer on), cut at a token boundary; if the base model's max_position_embeddings
cannot hold it plus the longest question and the answer, the largest context that fits is used and printed. The
generator is the embedded default's shape (config/config.yaml `adapter`), randomly initialised (its delta is computed
on every token whether or not it is zero, so the cost is the trained one's), or the fine-tuned one in --generator.

Each method contextualizes the context once (ga.eval.methods), then answers the same questions as the runner does, in
one call, but in batches of one (per-query latency, as the paper reports it; the generative adapter's LoRA factors
are formed once per call, so their cost is shared by the questions), every answer exactly --max-new-tokens tokens long (no stop at a
newline or EOS) so that every method does the same generation work. The methods take turns within each repeat, so
drift in machine load hits them alike; per-query seconds are the median over repeats of the mean over questions.
Times are this process's CPU seconds with one torch thread (the default; other load on shared cores does not
count), wall seconds with more. FLOPs are ga.eval.costs' analytic counts.

Goals: generative_adapter / closed_book per-query latency <= 1.1 (the adapter adds a rank-r LoRA on the adapted maps
only); in_context / generative_adapter >= 3 (prompting re-reads the context for every query). Also measured:
in_context_cached, prompting with the context's KV cache computed once and shared by the queries (what the pipeline
runs by default, `knowledge_eval.prompt_cache`): each query then runs only its own tokens but still attends to the
whole context, and the cache is stored per context.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

QUESTIONS = (
    "What does the with statement do?",
    "How is an exception raised in Python?",
    "What does the global statement declare?",
    "What is a generator function?",
    "Which names does a class body bind?",
    "What does the import statement do?",
)
CLOSED_BOOK_TO_ADAPTER_GOAL = 1.1
PROMPTING_TO_ADAPTER_GOAL = 3.0
METHODS = ("generative_adapter", "closed_book", "in_context", "in_context_cached")


def clock():
    """This process's CPU time with one torch thread (robust to other load on shared cores), else wall time."""
    return time.process_time if torch.get_num_threads() == 1 else time.perf_counter


def offline_context(tokenizer, tokens: int) -> tuple[str, int]:
    """About `tokens` tokens of the stdlib documentation topics, cut at a token boundary; (text, its tokens)."""
    from pydoc_data.topics import topics

    from ga.eval.contexts import PASSAGE_SEPARATOR

    text = ""
    for name in sorted(topics):
        text += (PASSAGE_SEPARATOR if text else "") + topics[name].strip()
        offsets = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).offsets
        if len(offsets) > tokens:
            return text[: offsets[tokens][0]], tokens
    return text, len(offsets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--context-tokens", type=int, default=4096)
    parser.add_argument("--questions", type=int, default=3, help=f"at most {len(QUESTIONS)}")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=20)
    parser.add_argument("--generator", help="a fine-tuned generator's folder (default: random init, embedded shape)")
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"), help="run config with `adapter`")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU-time clock)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import ga
    from ga.base import load_base
    from ga.eval import costs
    from ga.eval.contexts import Context, Question
    from ga.eval.generation import GenerationSettings
    from ga.eval.methods import ClosedBook, GenerativeAdapterMethod, InContext
    from ga.run_config import RunConfig
    from ga.smollm2 import embedded_model_dir

    base, tokenizer = load_base(embedded_model_dir())
    if args.generator:
        gam = ga.GenerativeAdapter.from_pretrained(args.generator, base_model=base)
        generator_source = args.generator
    else:
        torch.manual_seed(0)
        gam = ga.GenerativeAdapter(base, RunConfig.load(args.config, []).adapter)
        generator_source = "random init"

    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, batch_size=1, fixed_length=True)
    methods = {
        "generative_adapter": GenerativeAdapterMethod(gam, tokenizer, settings, "sequential"),
        "closed_book": ClosedBook(base, tokenizer, settings),
        "in_context": InContext(base, tokenizer, settings, max_prompt_tokens=None),
        # the context run once into a KV cache that every question continues (knowledge_eval.prompt_cache)
        "in_context_cached": InContext(base, tokenizer, settings, max_prompt_tokens=None, prompt_cache=True),
    }
    questions = tuple(Question(f"q{i}", text, ()) for i, text in enumerate(QUESTIONS[: args.questions]))
    in_context = methods["in_context"]
    longest_question = max(len(in_context.context_prompt("", q.question)[0]) for q in questions)
    room = in_context.prompt_limit - longest_question  # the empty-context prompt holds the blank line already
    context_tokens = min(args.context_tokens, room)
    if context_tokens < args.context_tokens:
        print(
            f"max_position_embeddings {base.config.max_position_embeddings} holds at most {context_tokens} context "
            f"tokens with these questions and {args.max_new_tokens} new tokens: using {context_tokens}"
        )
    text, context_tokens = offline_context(tokenizer, context_tokens)
    context = Context("bench-0", "offline", context_tokens, text, context_tokens, ("topics",), questions)

    clock_fn = clock()
    contextualized, contextualize_s = {}, {}
    for name, method in methods.items():
        start = clock_fn()
        contextualized[name] = method.contextualize(context)
        contextualize_s[name] = clock_fn() - start
    for name, method in methods.items():  # warm-up, untimed: first calls pay for lazy initialisation
        method.generate(contextualized[name], questions[:1])
    query_s = {name: [] for name in methods}
    generations = {}
    for _ in range(args.repeats):
        for name, method in methods.items():
            start = clock_fn()
            generations[name] = method.generate(contextualized[name], questions)  # batches of 1, as the runner calls
            query_s[name].append((clock_fn() - start) / len(questions))
    per_query_s = {name: statistics.median(values) for name, values in query_s.items()}
    per_query_flops = {
        name: statistics.mean(methods[name].query_flops(contextualized[name], g) for g in generations[name])
        for name in methods
    }
    prompt_tokens = {name: statistics.mean(g.prompt_tokens for g in generations[name]) for name in methods}

    print(
        f"SmolLM2-135M-Instruct, generator {generator_source} (window {gam.config.window}, d_r "
        f"{gam.config.inter_size}, r {gam.config.rank}, {gam.config.target_modules}); context {context_tokens} "
        f"tokens; {len(questions)} questions x {args.repeats} repeats, {args.max_new_tokens} new tokens each; "
        f"{torch.get_num_threads()} thread(s), {'CPU' if clock_fn is time.process_time else 'wall'} seconds"
    )
    header = (
        f"{'method':<20}{'contextualize s':>16}{'ctx TFLOPs':>12}{'prompt tok':>12}{'query s':>10}"
        f"{'query GFLOPs':>14}{'storage floats':>16}"
    )
    print(header)
    print("-" * len(header))
    for name in methods:
        print(
            f"{name:<20}{contextualize_s[name]:>16.2f}{contextualized[name].flops / 1e12:>12.3f}"
            f"{prompt_tokens[name]:>12.0f}{per_query_s[name]:>10.3f}{per_query_flops[name] / 1e9:>14.2f}"
            f"{contextualized[name].storage_floats:>16,}"
        )
    adapter_over_closed = per_query_s["generative_adapter"] / per_query_s["closed_book"]
    prompting_over_adapter = per_query_s["in_context"] / per_query_s["generative_adapter"]
    cached_over_adapter = per_query_s["in_context_cached"] / per_query_s["generative_adapter"]
    print(
        f"per-query latency generative_adapter / closed_book = {adapter_over_closed:.3f} "
        f"(goal <= {CLOSED_BOOK_TO_ADAPTER_GOAL}: {'met' if adapter_over_closed <= CLOSED_BOOK_TO_ADAPTER_GOAL else 'NOT met'})"
    )
    print(
        f"per-query latency in_context / generative_adapter = {prompting_over_adapter:.2f} "
        f"(goal >= {PROMPTING_TO_ADAPTER_GOAL}: {'met' if prompting_over_adapter >= PROMPTING_TO_ADAPTER_GOAL else 'NOT met'})"
    )
    print(
        f"per-query latency in_context_cached / generative_adapter = {cached_over_adapter:.2f} (the context's KV "
        f"cache computed once: {contextualized['in_context_cached'].storage_floats:,} floats stored per context)"
    )
    result = {
        "adapter_over_closed_book_latency": round(adapter_over_closed, 4),
        "prompting_over_adapter_latency": round(prompting_over_adapter, 3),
        "cached_prompting_over_adapter_latency": round(cached_over_adapter, 3),
        "adapter_over_closed_book_flops": round(
            per_query_flops["generative_adapter"] / per_query_flops["closed_book"], 4
        ),
        "prompting_over_adapter_flops": round(per_query_flops["in_context"] / per_query_flops["generative_adapter"], 3),
        "context_tokens": context_tokens,
        "questions": len(questions),
        "repeats": args.repeats,
        "max_new_tokens": args.max_new_tokens,
        "threads": torch.get_num_threads(),
        "clock": "process_cpu" if clock_fn is time.process_time else "wall",
        "generator": generator_source,
        "per_query_s": {name: round(value, 4) for name, value in per_query_s.items()},
        "per_query_gflops": {name: round(value / 1e9, 3) for name, value in per_query_flops.items()},
        "contextualize_s": {name: round(value, 3) for name, value in contextualize_s.items()},
        "contextualize_tflops": {name: round(c.flops / 1e12, 4) for name, c in contextualized.items()},
        "storage_floats": {name: c.storage_floats for name, c in contextualized.items()},
        "kv_cache_floats_per_token": costs.DecoderShape.of(base.config).kv_floats_per_token,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
