"""Knowledge-QA methods, generation, costs and runner (ga.eval.methods, ga.eval.knowledge.methods / generation / costs / lora / runner).

Fast tests run on the tiny random Llama with the tiny ChatML tokenizer (tests/conftest.py); the SmolLM2 ones are
marked slow by their fixture."""

from __future__ import annotations

import pytest
import torch
from tiny_models import randomize_generator, tiny_adapter_config, tiny_base
from torch.utils.flop_counter import FlopCounterMode

import ga
from ga.base import load_base
from ga.eval import costs
from ga.eval.config import LoraTrainingConfig
from ga.eval.contexts import Context, Question
from ga.eval.generation import GenerationSettings, batches, generate, generate_answers
from ga.eval.knowledge.config import KnowledgeEvalConfig
from ga.eval.knowledge.methods import build_method
from ga.eval.lora import TRAINING_FILE, load_lora, lora_applied, train_lora, train_qa_lora
from ga.eval.methods import ClosedBook
from ga.eval.runner import run_method
from ga.format import ChatFormat, ContextFormat

QUESTIONS = (
    "What is a module?",
    "Where is the class defined and which names does its body bind when it runs?",
    "Why?",
    "How does the interpreter evaluate an expression statement in a function?",
    "What does import do?",
)
CONTEXT_TEXT = (
    "A module is a file containing Python definitions and statements. The file name is the module name "
    "with the suffix appended. Within a module, the module's name is available as the value of the "
    "global variable. A class definition is an executable statement. The class body is executed in a "
    "new execution frame, using a newly created local namespace and the original global namespace."
)


def make_context(text: str = CONTEXT_TEXT, questions=QUESTIONS, references=("a file",)) -> Context:
    return Context(
        context_id="tiny-512-0",
        benchmark="tiny",
        length=512,
        text=text,
        num_tokens=0,
        passage_ids=("p0",),
        questions=tuple(Question(f"q{i}", q, tuple(references)) for i, q in enumerate(questions)),
    )


def eval_config(**overrides) -> KnowledgeEvalConfig:
    return KnowledgeEvalConfig(**{"max_new_tokens": 8, "batch_size": 3, **overrides})


@pytest.fixture
def tiny(tiny_model_dir):
    """A fresh tiny base model (methods may wrap it) and its tokenizer."""
    return load_base(tiny_model_dir)


def state_snapshot(model) -> tuple:
    return (
        {name: tensor.clone() for name, tensor in model.state_dict().items()},
        [(name, type(module)) for name, module in model.named_modules()],
        {name: parameter.requires_grad for name, parameter in model.named_parameters()},
    )


def assert_unchanged(model, snapshot) -> None:
    weights, modules, flags = snapshot
    now = model.state_dict()
    assert set(now) == set(weights)
    assert all(torch.equal(now[name], weights[name]) for name in weights)
    assert [(name, type(module)) for name, module in model.named_modules()] == modules
    assert {name: parameter.requires_grad for name, parameter in model.named_parameters()} == flags


def direct_answer(model_generate, tokenizer, prompt: list[int], max_new_tokens: int) -> str:
    """One prompt, unbatched, through a plain `generate` call: the reference the batched path must reproduce."""
    ids = torch.tensor([prompt])
    output = model_generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True).split("\n", 1)[0].strip()


# ---------------------------------------------------------------------------------------------- generation
def test_batches_sort_by_length_and_respect_both_caps():
    lengths = [5, 1, 4, 2, 3, 10]
    assert batches(lengths, batch_size=2, max_batch_tokens=None) == [[1, 3], [4, 2], [0, 5]]
    # 3 prompts of length <= 4 fit 12 positions; the 10-token prompt exceeds the cap and goes alone
    assert batches(lengths, batch_size=8, max_batch_tokens=12) == [[1, 3, 4], [2, 0], [5]]
    assert sorted(i for batch in batches(lengths, 3, 7) for i in batch) == list(range(len(lengths)))


def test_closed_book_batched_equals_one_by_one_and_direct_generate(tiny):
    base, tokenizer = tiny
    context = make_context()
    batched = build_method("closed_book", eval_config(batch_size=3), base, tokenizer)
    single = build_method("closed_book", eval_config(batch_size=1), base, tokenizer)
    answers = batched.answer(batched.contextualize(context), context.questions)
    assert answers == single.answer(single.contextualize(context), context.questions)
    chat = ChatFormat(tokenizer)
    expected = [
        direct_answer(base.generate, tokenizer, chat.prompt_ids([{"role": "user", "content": q.question}]), 8)
        for q in context.questions
    ]
    assert answers == expected
    assert any(answers), "the tiny model answered nothing: the comparison would be vacuous"


def test_fixed_length_generates_every_token(tiny):
    base, tokenizer = tiny
    prompts = [ChatFormat(tokenizer).prompt_ids([{"role": "user", "content": q}]) for q in QUESTIONS[:3]]
    generations = generate(base, tokenizer, prompts, GenerationSettings(6, 2, fixed_length=True))
    assert [g.new_tokens for g in generations] == [6, 6, 6]
    assert [g.prompt_tokens for g in generations] == [len(p) for p in prompts]
    assert all("\n" not in g.text for g in generations)
    assert generate_answers(base, tokenizer, prompts, 6, 2) == [
        g.text for g in generate(base, tokenizer, prompts, GenerationSettings(6, 1))
    ]


# ---------------------------------------------------------------------------------------------- methods
def test_generative_adapter_batched_equals_direct_generate(tiny):
    base, tokenizer = tiny
    gam = randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=16)), std=0.5)
    cfg = eval_config(batch_size=4)
    method = build_method("generative_adapter", cfg, base, tokenizer, generator=gam)
    context = make_context()
    contextualized = method.contextualize(context)
    answers = method.answer(contextualized, context.questions)  # batches of 4 and 1, left-padded

    # the reference: the context encoded as instruction tuning did, one question at a time through gam.generate
    ids = ContextFormat.from_tokenizer(tokenizer).ids(context.text)
    state = gam.encode(ids, strategy="sequential", window=16, chunking="fixed")
    assert all(torch.equal(state.sums[n], contextualized.payload.sums[n]) for n in state.sums)
    chat = ChatFormat(tokenizer)
    prompts = [chat.prompt_ids([{"role": "user", "content": q.question}]) for q in context.questions]
    assert len({len(p) for p in prompts}) == len(prompts)  # every batch is padded
    expected = [
        direct_answer(lambda *a, **k: gam.generate(*a, state=state, **k), tokenizer, p, cfg.max_new_tokens)
        for p in prompts
    ]
    assert answers == expected
    closed_book = [direct_answer(base.generate, tokenizer, p, cfg.max_new_tokens) for p in prompts]
    assert answers != closed_book, "the generated adapter changed no answer: the test would not see it ignored"

    shapes = costs.generator_lora_shapes(gam)
    assert contextualized.storage_floats == sum(r * (i + o) for i, o, r in shapes) == 2 * 8 * (64 + 64)
    assert contextualized.notes["state_floats"] == 2 * 32 * 32
    assert contextualized.context_tokens == len(ids)


def test_generative_adapter_streaming_matches_sequential(tiny):
    base, tokenizer = tiny
    gam = randomize_generator(ga.GenerativeAdapter(base, tiny_adapter_config(window=16)), std=0.5)
    context = make_context()
    answers = {}
    for strategy in ("sequential", "streaming"):
        method = build_method(
            "generative_adapter", eval_config(encode_strategy=strategy), base, tokenizer, generator=gam
        )
        answers[strategy] = method.answer(method.contextualize(context), context.questions)
    assert answers["sequential"] == answers["streaming"]


def test_in_context_truncation_keeps_the_end_and_is_recorded(tiny):
    base, tokenizer = tiny
    chat = ChatFormat(tokenizer)
    question = QUESTIONS[0]
    full = chat.prompt_ids([{"role": "user", "content": f"{CONTEXT_TEXT}\n\n{question}"}])
    limit = len(full) - 25
    method = build_method("in_context", eval_config(max_prompt_tokens=limit, prompt_cache=False), base, tokenizer)
    ids, dropped = method.context_prompt(CONTEXT_TEXT, question)
    assert dropped == 25 and len(ids) == limit
    # what is left out is one block of tokens, the context's first ones: its end is kept
    start = next(i for i, (a, b) in enumerate(zip(ids, full)) if a != b)
    assert ids == full[:start] + full[start + dropped :]
    assert CONTEXT_TEXT.startswith(tokenizer.decode(full[start : start + dropped]))
    assert tokenizer.decode(ids).endswith(tokenizer.decode(full[-40:]))

    untruncated = build_method("in_context", eval_config(), base, tokenizer)
    assert untruncated.context_prompt(CONTEXT_TEXT, question) == (full, 0)
    assert untruncated.prompt_limit == base.config.max_position_embeddings - 8

    rows, cost_rows = run_method(method, [make_context(questions=(question, "Why?"))])
    full_why = chat.prompt_ids([{"role": "user", "content": f"{CONTEXT_TEXT}\n\nWhy?"}])
    assert [row["notes"]["prompt_truncated_tokens"] for row in rows] == [25, len(full_why) - limit]
    assert [row["prompt_tokens"] for row in rows] == [limit, limit]
    assert cost_rows[0]["notes"]["prompt_truncated_tokens"] == 25 + len(full_why) - limit
    assert cost_rows[0]["notes"]["questions_with_prompt_truncated_tokens"] == 2


def test_bm25_retrieves_the_chunk_with_the_query_terms(tiny):
    base, tokenizer = tiny
    sentences = [
        "The module statement binds names in the namespace.",
        "An exception handler catches errors raised in the try block.",
        "The zebra and the giraffe live in the savanna near the river.",
        "Integers support the usual arithmetic operations and comparisons.",
    ]
    text = " ".join(sentences)
    cfg = eval_config()
    cfg.bm25.chunk_tokens = 12
    method = build_method("bm25", cfg, base, tokenizer)
    contextualized = method.contextualize(make_context(text=text))
    chunks = contextualized.payload.chunks
    assert "".join(chunks) == text and len(chunks) == contextualized.notes["chunks"] > 3
    zebra = [i for i, chunk in enumerate(chunks) if "zebra" in chunk.lower()]
    best = method.retrieve(contextualized.payload, "Where does the zebra live?")
    assert best == zebra[:1]
    generations = method.generate(contextualized, [Question("q", "Where does the zebra live?", ("savanna",))])
    assert generations[0].notes["retrieved_chunks"] == best
    prompt, _ = method.context_prompt(chunks[best[0]].strip(), "Where does the zebra live?")
    assert generations[0].prompt_tokens == len(prompt)
    assert method.retrieve(contextualized.payload, "qqqq xyzzy") == [0]  # no known word: ties, first chunk


def lm_loss(model, ids: list[int]) -> float:
    with torch.no_grad():
        tensor = torch.tensor([ids])
        return float(model(input_ids=tensor, labels=tensor).loss)


def test_continual_pretraining_leaves_base_unchanged_and_learns_the_context(tiny):
    base, tokenizer = tiny
    cfg = eval_config(
        continual_pretraining=LoraTrainingConfig(rank=16, alpha=32, lr=5e-3, epochs=60, batch_size=1, max_tokens=256)
    )
    method = build_method("continual_pretraining", cfg, base, tokenizer, seed=3)
    ids = ContextFormat.from_tokenizer(tokenizer).ids(CONTEXT_TEXT)
    snapshot = state_snapshot(base)
    loss_before = lm_loss(base, ids)
    context = make_context()
    contextualized = method.contextualize(context)
    answers = method.answer(contextualized, context.questions)
    assert_unchanged(base, snapshot)
    assert lm_loss(base, ids) == loss_before
    trained = contextualized.payload
    with lora_applied(base, trained.config, trained.weights) as model:
        loss_after = lm_loss(model, ids)
        assert answers == [
            direct_answer(model.generate, tokenizer, method.question_prompt(q), 8) for q in context.questions
        ]
    assert_unchanged(base, snapshot)
    assert loss_after < 0.85 * loss_before
    assert contextualized.storage_floats == costs.lora_floats(trained.shapes) > 0
    assert contextualized.flops == costs.lora_training_flops(base.config, trained.trained_lengths, trained.shapes)
    # seeded: the same LoRA again
    again = train_lora(base, [ids], cfg.continual_pretraining, seed=3, pad_id=tokenizer.pad_token_id)
    assert all(torch.equal(again.weights[k], trained.weights[k]) for k in trained.weights)


def test_qa_lora_round_trips_through_save_and_load(tiny, tmp_path):
    base, tokenizer = tiny
    pairs = [
        ("What is a module?", "A file of definitions."),
        ("What is a class body?", "An execution frame."),
        ("Which namespace?", "The local one."),
        ("Is a class definition executable?", "Yes."),
    ]
    cfg = LoraTrainingConfig(rank=4, alpha=8, lr=1e-2, epochs=3, batch_size=2, max_tokens=128)
    snapshot = state_snapshot(base)
    out_dir = tmp_path / "qa_lora"
    trained = train_qa_lora(base, tokenizer, pairs, cfg, seed=0, out_dir=out_dir)
    assert_unchanged(base, snapshot)
    assert {"adapter_config.json", "adapter_model.safetensors", TRAINING_FILE} <= {p.name for p in out_dir.iterdir()}
    loaded = load_lora(out_dir)
    assert set(loaded.weights) == set(trained.weights)
    assert all(torch.equal(loaded.weights[k], trained.weights[k]) for k in trained.weights)
    assert loaded.shapes == trained.shapes

    method = build_method("qa_finetuning", eval_config(), base, tokenizer, qa_lora_dir=out_dir)
    context = make_context()
    contextualized = method.contextualize(context)
    assert contextualized.storage_floats == 0 and contextualized.notes["shared_lora_floats"] > 0
    answers = method.answer(contextualized, context.questions)
    with lora_applied(base, trained.config, trained.weights) as model:
        assert answers == [
            direct_answer(model.generate, tokenizer, method.question_prompt(q), 8) for q in context.questions
        ]
    assert_unchanged(base, snapshot)


def test_build_method_names_what_is_missing(tiny):
    base, tokenizer = tiny
    with pytest.raises(ValueError, match="generator="):
        build_method("generative_adapter", eval_config(), base, tokenizer)
    with pytest.raises(ValueError, match="qa_lora_dir="):
        build_method("qa_finetuning", eval_config(), base, tokenizer)
    with pytest.raises(ValueError, match="unknown method 'rag'"):
        build_method("rag", eval_config(), base, tokenizer)


# ---------------------------------------------------------------------------------------------- costs
# FlopCounterMode counts the matmul ops (mm, bmm, addmm, SDPA kernels it knows) by their shapes, and nothing
# elementwise; the analytic count covers the same matmuls, so the two agree exactly (tolerance 0). Attention runs
# "eager" here: its products are plain matmuls the counter sees (CPU SDPA dispatches to a kernel it does not count),
# and as dense rectangles, hence causal=False (the analytic default, causal, counts only the pairs a query attends).
def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def test_forward_and_generation_flops_match_flop_counter():
    model = tiny_base(attn="eager")
    ids = torch.randint(0, 128, (1, 40), generator=torch.Generator().manual_seed(0))
    assert count_flops(lambda: model(ids)) == costs.forward_flops(model.config, 40, causal=False)
    assert costs.forward_flops(model.config, 40) < costs.forward_flops(model.config, 40, causal=False)

    def run():
        return model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=7,
            min_new_tokens=7,
            do_sample=False,
            pad_token_id=0,
        )

    assert count_flops(run) == costs.generation_flops(model.config, 40, 7, causal=False)
    # one new token after c cached: the same number of query-key pairs either way
    assert costs.forward_flops(model.config, 1, 30) == costs.forward_flops(model.config, 1, 30, causal=False)


@pytest.mark.parametrize("strategy", ["sequential", "streaming"])
@pytest.mark.parametrize("tokens", [5, 40, 48])
def test_encode_flops_match_flop_counter(strategy, tokens):
    gam = randomize_generator(ga.GenerativeAdapter(tiny_base(attn="eager"), tiny_adapter_config(window=16)))
    ids = torch.randint(0, 128, (tokens,), generator=torch.Generator().manual_seed(tokens))

    def contextualize():
        gam.lora(gam.encode(ids, strategy=strategy, window=16, chunking="fixed"))

    assert count_flops(contextualize) == costs.encode_flops(gam, tokens, strategy, 16, causal=False)


def test_adapted_query_flops_match_flop_counter():
    gam = randomize_generator(ga.GenerativeAdapter(tiny_base(attn="eager"), tiny_adapter_config()))
    state = gam.encode(torch.arange(20) % 128, strategy="sequential")
    lora = gam.lora(state)  # formed once per context: counted in contextualization, not per query
    ids = torch.arange(12).unsqueeze(0)

    def query():
        with gam.adapted(state) as model:
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=5,
                min_new_tokens=5,
                do_sample=False,
                pad_token_id=0,
            )

    factors = 2 * sum(a.shape[0] * gam.config.inter_size * (a.shape[1] + b.shape[0]) for a, b in lora.values())
    expected = (
        costs.generation_flops(gam.base_model.config, 12, 5, causal=False)
        + costs.lora_delta_flops(costs.generator_lora_shapes(gam), 12 + 4)
        + factors
    )
    assert count_flops(query) == expected


def test_peak_memory_and_stopwatch_measure_a_phase():
    with costs.PeakMemory() as peak, costs.Stopwatch() as clock:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB
        block.add_(1)
    assert clock.seconds > 0
    assert peak.kind in ("cpu_peak_rss", "cpu_peak_rss_since_start")
    assert peak.megabytes is not None and peak.megabytes >= 64
    del block


# ---------------------------------------------------------------------------------------------- runner
class FailingOn(ClosedBook):
    """Closed-book, except that a question containing "BAD" raises, and so does a context whose text is "BAD"."""

    def contextualize(self, context):
        if context.text == "BAD":
            raise RuntimeError("unreadable context")
        return super().contextualize(context)

    def generate(self, contextualized, questions):
        if any("BAD" in question.question for question in questions):
            raise ValueError("bad question")
        return super().generate(contextualized, questions)


def test_runner_records_every_question_and_its_outcome(tiny):
    base, tokenizer = tiny
    method = FailingOn(base, tokenizer, GenerationSettings(max_new_tokens=4, batch_size=8))
    good = Context(
        "tiny-512-0",
        "tiny",
        512,
        CONTEXT_TEXT,
        70,
        ("p0",),
        (
            Question("a", "What is a module?", ("a file",)),
            Question("b", "BAD question?", ("x",)),
            Question("c", "Why?", ()),
        ),
    )
    bad = Context("tiny-512-1", "tiny", 512, "BAD", 1, ("p1",), (Question("d", "What?", ("y",)),))
    empty = Context("tiny-512-2", "tiny", 512, "Nothing asked.", 3, ("p2",), ())
    rows, cost_rows = run_method(method, [good, bad, empty], progress=False)
    assert [(row["question_id"], row["outcome"]) for row in rows] == [
        ("a", "answered"),
        ("b", "failed"),
        ("c", "no_references"),
        ("d", "contextualize_failed"),
    ]
    assert rows[1]["error"] == "ValueError: bad question" and rows[1]["prediction"] is None
    assert rows[2]["prediction"] is not None and rows[2]["references"] == []
    assert rows[3]["error"] == "RuntimeError: unreadable context"
    assert [cost["context_id"] for cost in cost_rows] == ["tiny-512-0", "tiny-512-1", "tiny-512-2"]
    assert [cost["failed_questions"] for cost in cost_rows] == [1, 1, 0]
    first = cost_rows[0]
    assert first["questions"] == 3 and first["contextualize_flops"] == 0 and first["storage_floats"] == 0
    answered = [row for row in rows if row["query_flops"] is not None]
    assert first["per_query_flops"] == sum(row["query_flops"] for row in answered) / 2
    assert answered[0]["query_flops"] == costs.generation_flops(
        base.config, answered[0]["prompt_tokens"], answered[0]["new_tokens"]
    )
    assert first["per_query_seconds"] > 0 and first["peak_memory_mb"] > 0
    assert cost_rows[2]["per_query_seconds"] is None


# ---------------------------------------------------------------------------------------------- SmolLM2 (slow)
def test_smollm2_generative_adapter_batched_equals_direct_generate(embedded_dir):
    base, tokenizer = load_base(embedded_dir)
    config = ga.GenerativeAdapterConfig(inter_size=128, rank=32, alpha=64, target_modules=["o_proj"], window=64)
    torch.manual_seed(0)
    gam = randomize_generator(ga.GenerativeAdapter(base, config), std=0.05)
    cfg = eval_config(max_new_tokens=12, batch_size=3)
    method = build_method("generative_adapter", cfg, base, tokenizer, generator=gam)
    context = make_context(
        questions=("What is the capital of France?", "What is a module in Python, briefly?", "Name a color.")
    )
    contextualized = method.contextualize(context)
    answers = method.answer(contextualized, context.questions)
    state = contextualized.payload
    expected = [
        direct_answer(lambda *a, **k: gam.generate(*a, state=state, **k), tokenizer, method.question_prompt(q), 12)
        for q in context.questions
    ]
    assert answers == expected
    closed = build_method("closed_book", cfg, base, tokenizer)
    assert closed.answer(closed.contextualize(context), context.questions[:1]) == ["The capital of France is Paris."]


def test_prefix_cached_generation_equals_the_whole_prompts(tiny):
    """A shared prefix run once (its KV cache copied into every batch, padding between prefix and suffixes) gives the
    same greedy answers as the whole prompts run from scratch, for suffixes of different lengths."""
    from ga.eval.generation import encode_prefix

    model, tokenizer = tiny
    prefix = tokenizer("The archive keeps the maps of the old harbour and the lists of ships.\n\n")["input_ids"]
    suffixes = [
        tokenizer(text)["input_ids"]
        for text in ("Where are the maps?", "What else?", "Which lists does the archive keep, and since when?")
    ]
    settings = GenerationSettings(max_new_tokens=6, batch_size=2, fixed_length=True)
    whole = generate(model, tokenizer, [prefix + suffix for suffix in suffixes], settings)
    shared = encode_prefix(model, prefix)
    cached = generate(model, tokenizer, suffixes, settings, prefix=shared)
    assert [g.text for g in cached] == [g.text for g in whole]
    assert [g.cached_tokens for g in cached] == [len(prefix)] * 3
    assert [g.prompt_tokens for g in cached] == [len(s) for s in suffixes]
    again = generate(model, tokenizer, suffixes, settings, prefix=shared)  # the prefix's cache is left as it was
    assert [g.text for g in again] == [g.text for g in cached]


def test_cached_in_context_prompting_answers_like_the_whole_prompts(tiny):
    """The context run once (prompt_cache) answers every question as the whole prompt does; when the longest
    question's prompt would not fit, the context's first tokens are dropped once for all questions, and counted."""
    base, tokenizer = tiny
    questions = (QUESTIONS[0], "Why?", "Which statement binds names, and where does it bind them?")
    context = make_context(questions=questions)
    whole = build_method("in_context", eval_config(prompt_cache=False), base, tokenizer)
    cached = build_method("in_context", eval_config(prompt_cache=True), base, tokenizer)
    contextualized = cached.contextualize(context)
    assert contextualized.notes["prompt_truncated_tokens"] == 0
    assert cached.answer(contextualized, context.questions) == whole.answer(
        whole.contextualize(context), context.questions
    )
    generations = cached.generate(contextualized, context.questions)
    prefix = contextualized.notes["prefix_tokens"]
    chat = ChatFormat(tokenizer)
    for generation, question in zip(generations, questions):  # prefix + suffix: the whole prompt's token count
        full = chat.prompt_ids([{"role": "user", "content": f"{CONTEXT_TEXT}\n\n{question}"}])
        assert generation.cached_tokens == prefix and generation.cached_tokens + generation.prompt_tokens == len(full)
    # the per-query cost counts only the question's own tokens (the context is in the cache)
    assert cached.query_flops(contextualized, generations[1]) < whole.query_flops(
        whole.contextualize(context), whole.generate(whole.contextualize(context), context.questions)[1]
    )

    longest = chat.prompt_ids([{"role": "user", "content": f"{CONTEXT_TEXT}\n\n{questions[2]}"}])
    limited = build_method(
        "in_context", eval_config(prompt_cache=True, max_prompt_tokens=len(longest) - 10), base, tokenizer
    )
    truncated = limited.contextualize(context)
    assert truncated.notes["prompt_truncated_tokens"] == 10
    assert truncated.notes["prefix_tokens"] == prefix - 10
    rows, _ = run_method(limited, [context])
    assert [row["notes"]["prompt_truncated_tokens"] for row in rows] == [10, 10, 10]
    assert [row["notes"]["prompt_over_limit"] for row in rows] == [0, 0, 0]
