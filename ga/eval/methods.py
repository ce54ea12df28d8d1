"""The methods every evaluation family builds on, behind one interface (docs/method.md#knowledge-acquisition):
contextualize a context once, then answer all its questions in batches.

  closed_book            the base model, the question alone
  generative_adapter     the context (`ContextFormat`: BOS + text + EOS, as instruction tuning encoded it) becomes an
                         AdapterState (`encode`, windows of the generator's training length, fixed chunking, strategy
                         `<section>.encode_strategy`); questions are answered closed-book inside `adapted(state)`
  in_context             the whole context and the question in the user turn ("{context}\\n\\n{question}"); when the
                         prompt would exceed the limit, the context's first tokens are dropped (its end is kept); with
                         a prompt cache the prompt up to the question is run once per context and every question
                         continues from its KV cache

Each family's own methods and its registry are `ga.eval.<family>.methods`. Every prompt is a one-turn chat rendered
with the base model's own template (`ChatFormat`), as instruction tuning rendered its conversations. Storage per
context counts the floats kept to answer later: the generated adapter's rank-r LoRA factors (what serving needs
without the generator, and the paper's count: 32M floats per Mistral adapter; the d_r x d_r state is in the notes),
the context's KV cache for the prompting methods (what answering without re-reading the context would keep, the
paper's count for prompting; this runner re-reads it for every question).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ga.eval import costs
from ga.eval.contexts import Context, Question
from ga.eval.family import MethodEntry
from ga.eval.generation import Generation, GenerationSettings, Prefix, encode_prefix, generate

if TYPE_CHECKING:
    from ga.eval.family import OpenedModels
    from ga.eval.lora import TrainedLora

CONTEXT_PROMPT = "{context}\n\n{question}"
"""The user turn of in-context prompting (and of BM25, with the retrieved chunks as the context)."""


@dataclass
class Contextualized:
    """What contextualization produced for one Context."""

    payload: Any
    storage_floats: int
    """Floats stored per context to answer later (see the module doc)."""
    context_tokens: int
    """Tokens of the context as this method reads it."""
    notes: dict = field(default_factory=dict)
    """Counted outcomes and details, e.g. {"lora_steps": n}."""
    flops: int = 0
    """Analytic matmul FLOPs of contextualization (`ga.eval.costs`)."""


class Method(ABC):
    name: ClassVar[str]

    def __init__(self, base_model, tokenizer, settings: GenerationSettings):
        from ga.format import ChatFormat

        self.base_model, self.tokenizer, self.settings = base_model, tokenizer, settings
        self.chat_format = ChatFormat(tokenizer)

    @abstractmethod
    def contextualize(self, context: Context) -> Contextualized: ...

    @abstractmethod
    def generate(self, contextualized: Contextualized, questions: Sequence[Question]) -> list[Generation]:
        """The generations for `questions`, in order (text, token counts, per-question notes)."""

    def answer(self, contextualized: Contextualized, questions: Sequence[Question]) -> list[str]:
        return [generation.text for generation in self.generate(contextualized, questions)]

    def lora_shapes(self, contextualized: Contextualized) -> list[costs.LoraShape]:
        """(d_in, d_out, rank) of the LoRA applied (unmerged) while answering; none by default."""
        return []

    def query_flops(self, contextualized: Contextualized, generation: Generation) -> int:
        """Analytic FLOPs of one answer: the base model's generation with a KV cache, plus any unmerged LoRA on every
        position it computes (the prompt and every generated token but the last)."""
        positions = generation.prompt_tokens + max(generation.new_tokens - 1, 0)
        return costs.generation_flops(
            self.base_model.config,
            generation.prompt_tokens,
            generation.new_tokens,
            cached_tokens=generation.cached_tokens,
        ) + costs.lora_delta_flops(self.lora_shapes(contextualized), positions)

    def question_prompt(self, question: Question) -> list[int]:
        """The closed-book prompt: a chat with the question as the user turn."""
        return self.chat_format.prompt_ids([{"role": "user", "content": question.question}])

    def _closed_book(self, model, questions: Sequence[Question]) -> list[Generation]:
        prompts = [self.question_prompt(question) for question in questions]
        return generate(model, self.tokenizer, prompts, self.settings)


class ClosedBook(Method):
    name = "closed_book"

    def contextualize(self, context: Context) -> Contextualized:
        return Contextualized(payload=None, storage_floats=0, context_tokens=0)

    def generate(self, contextualized, questions):
        return self._closed_book(self.base_model, questions)


class GenerativeAdapterMethod(Method):
    name = "generative_adapter"

    def __init__(self, generator, tokenizer, settings: GenerationSettings, encode_strategy: str):
        from ga.format import ContextFormat

        super().__init__(generator.base_model, tokenizer, settings)
        self.generator, self.encode_strategy = generator, encode_strategy
        self.context_format = ContextFormat.from_tokenizer(tokenizer)

    def contextualize(self, context: Context) -> Contextualized:
        ids = self.context_format.ids(context.text)
        window = self.generator.config.window
        # as instruction tuning encoded contexts (ga.eval.answer_f1): windows of the training length, fixed chunks
        state = self.generator.encode(ids, strategy=self.encode_strategy, window=window, chunking="fixed")
        shapes = costs.generator_lora_shapes(self.generator)
        state_floats = sum(s.numel() for s in state.sums.values())
        return Contextualized(
            payload=state,
            storage_floats=costs.lora_floats(shapes),
            context_tokens=len(ids),
            notes={"state_floats": state_floats},
            flops=costs.encode_flops(self.generator, len(ids), self.encode_strategy, window),
        )

    def generate(self, contextualized, questions):
        with self.generator.adapted(contextualized.payload) as model:
            return self._closed_book(model, questions)

    def lora_shapes(self, contextualized):
        return costs.generator_lora_shapes(self.generator)


class LoraAnswering(Method):
    """A method that answers closed-book with a trained PEFT LoRA applied to the base model (unmerged, only while
    answering: `ga.eval.lora.lora_applied`)."""

    @abstractmethod
    def answering_lora(self, contextualized: Contextualized) -> TrainedLora:
        """The LoRA that answers `contextualized`'s questions."""

    def generate(self, contextualized, questions):
        from ga.eval.lora import lora_applied

        lora = self.answering_lora(contextualized)
        with lora_applied(self.base_model, lora.config, lora.weights) as model:
            return self._closed_book(model, questions)

    def lora_shapes(self, contextualized):
        return self.answering_lora(contextualized).shapes


@dataclass
class CachedContext:
    """In-context prompting with the context run once: the prompt up to the questions (chat template + context +
    blank line) as a KV-cached `Prefix`, and how many of the context's first tokens it leaves out."""

    context: str
    prefix: Prefix
    prefix_text: str
    truncated_tokens: int


class InContext(Method):
    name = "in_context"

    def __init__(
        self,
        base_model,
        tokenizer,
        settings: GenerationSettings,
        max_prompt_tokens: int | None,
        prompt_cache: bool = False,
        prompt_template: str = CONTEXT_PROMPT,
    ):
        """prompt_cache: run the prompt up to the question once per context (a KV-cached prefix for every question);
        prompt_template: the user turn, with {context} and {question} (each once; e.g. in-context learning joins
        the demonstrations and the query by its demonstration separator)."""
        super().__init__(base_model, tokenizer, settings)
        for field_name in ("{context}", "{question}"):
            if prompt_template.count(field_name) != 1:
                raise ValueError(f"in_context: prompt_template must contain {field_name} once, got {prompt_template!r}")
        model_limit = base_model.config.max_position_embeddings - settings.max_new_tokens
        self.prompt_limit = model_limit if max_prompt_tokens is None else min(max_prompt_tokens, model_limit)
        self.prompt_cache, self.prompt_template = prompt_cache, prompt_template
        # the literal text of the user turn before the context, and between the context and the question
        self.before_context, after_context = prompt_template.split("{context}")
        self.context_to_question = after_context.split("{question}")[0]
        if prompt_cache and "{question}" not in after_context:
            raise ValueError("in_context: prompt_cache needs the question after the context in prompt_template")

    def _text_tokens(self, text: str) -> int:
        return len(self.chat_format.backend.encode(text, add_special_tokens=False).ids)

    def _rendered(self, context: str, question: str) -> tuple[str, int]:
        """(the chat prompt's text of `prompt_template`, where the context starts in it)."""
        content = self.prompt_template.format(context=context, question=question)
        text = self.chat_format.template([{"role": "user", "content": content}], add_generation_prompt=True)
        start = text.rfind(content)
        if start < 0:
            raise ValueError(
                "in_context: the chat template does not render the user turn verbatim, so the "
                "context's tokens cannot be located"
            )
        return text, start + len(self.before_context)

    def _drop_context_start(self, encoding, start: int, end: int, excess: int) -> tuple[list[int], int]:
        """`encoding`'s ids without the first `excess` tokens that begin in text[start:end] (the context)."""
        ids = encoding.ids
        if excess <= 0:
            return ids, 0
        context_positions = [i for i, (first, _) in enumerate(encoding.offsets) if start <= first < end]
        dropped = context_positions[:excess]
        if not dropped:
            return ids, 0
        return ids[: dropped[0]] + ids[dropped[-1] + 1 :], len(dropped)

    def contextualize(self, context: Context) -> Contextualized:
        tokens = self._text_tokens(context.text)
        config = self.base_model.config
        if not self.prompt_cache:
            kept = min(tokens, self.prompt_limit)
            return Contextualized(
                payload=context.text, storage_floats=costs.kv_cache_floats(config, kept), context_tokens=tokens
            )
        cached = self.cache_context(context.text, [question.question for question in context.questions])
        prefix = len(cached.prefix.ids)
        # storage counts the context's kept tokens, as without the cache (the template's tokens are the same for
        # every context)
        kept = max(tokens - cached.truncated_tokens, 0)
        return Contextualized(
            payload=cached,
            storage_floats=costs.kv_cache_floats(config, kept),
            context_tokens=tokens,
            notes={"prefix_tokens": prefix, "prompt_truncated_tokens": cached.truncated_tokens},
            flops=costs.forward_flops(config, prefix, logit_tokens=1),
        )

    def cache_context(self, context: str, questions: Sequence[str]) -> CachedContext:
        """The shared prefix of every question's prompt, run once. When the longest question's prompt would exceed
        the limit, the context's first tokens are dropped from the prefix (its end is kept), once for all questions."""
        text, start = self._rendered(context, "")
        prefix_text = text[: start + len(context) + len(self.context_to_question)]
        suffixes = [len(self.suffix_ids(prefix_text, context, question)) for question in questions] or [0]
        encoding = self.chat_format.backend.encode(prefix_text, add_special_tokens=False)
        excess = len(encoding.ids) + max(suffixes) - self.prompt_limit
        ids, dropped = self._drop_context_start(encoding, start, start + len(context), excess)
        return CachedContext(context, encode_prefix(self.base_model, ids), prefix_text, dropped)

    def suffix_ids(self, prefix_text: str, context: str, question: str) -> list[int]:
        """The tokens of a question's prompt after the shared prefix (tokenized on their own: the prefix ends with
        a blank line, where the tokenizer's pre-tokenization splits anyway)."""
        text, _ = self._rendered(context, question)
        if not text.startswith(prefix_text):
            raise ValueError(
                "in_context: the chat template renders the context differently for different "
                "questions, so the context cannot be run once for all of them"
            )
        return self.chat_format.backend.encode(text[len(prefix_text) :], add_special_tokens=False).ids

    def context_prompt(self, context: str, question: str) -> tuple[list[int], int]:
        """(prompt ids, context tokens dropped): the chat prompt of `prompt_template`, with as many of the context's
        first tokens left out as needed to fit `prompt_limit` (all of them, if the question alone is too long: the
        prompt is then over the limit and still answered). Tokens are those of the whole rendered prompt, so what
        is kept is tokenized exactly as in the full prompt."""
        text, start = self._rendered(context, question)
        encoding = self.chat_format.backend.encode(text, add_special_tokens=False)
        if not context:
            return encoding.ids, 0
        return self._drop_context_start(encoding, start, start + len(context), len(encoding.ids) - self.prompt_limit)

    def _prompted(self, contexts: Sequence[str], questions: Sequence[Question]) -> list[Generation]:
        prompts, notes = [], []
        for context, question in zip(contexts, questions):
            ids, dropped = self.context_prompt(context, question.question)
            prompts.append(ids)
            notes.append({"prompt_truncated_tokens": dropped, "prompt_over_limit": int(len(ids) > self.prompt_limit)})
        generations = generate(self.base_model, self.tokenizer, prompts, self.settings)
        return [replace(generation, notes={**generation.notes, **note}) for generation, note in zip(generations, notes)]

    def _cached(self, cached: CachedContext, questions: Sequence[Question]) -> list[Generation]:
        suffixes = [self.suffix_ids(cached.prefix_text, cached.context, question.question) for question in questions]
        generations = generate(self.base_model, self.tokenizer, suffixes, self.settings, prefix=cached.prefix)
        prefix_tokens = len(cached.prefix.ids)
        return [
            replace(
                generation,
                notes={
                    **generation.notes,
                    "prompt_truncated_tokens": cached.truncated_tokens,
                    "prompt_over_limit": int(prefix_tokens + len(ids) > self.prompt_limit),
                },
            )
            for generation, ids in zip(generations, suffixes)
        ]

    def generate(self, contextualized, questions):
        if isinstance(contextualized.payload, CachedContext):
            return self._cached(contextualized.payload, questions)
        return self._prompted([contextualized.payload] * len(questions), questions)


def check_generator(generator, base_model) -> None:
    """The generative adapter's methods need a GenerativeAdapter around the very base model the others use."""
    if generator is None:
        raise ValueError("generative_adapter: needs generator= (a GenerativeAdapter)")
    if generator.base_model is not base_model:
        raise ValueError("generative_adapter: generator.base_model is not the given base_model")


def generation_settings(cfg) -> GenerationSettings:
    """Greedy generation as an evaluation section sets it (knowledge_eval, icl_eval and msc_eval share the keys)."""
    return GenerationSettings(
        max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, max_batch_tokens=cfg.max_batch_tokens
    )


# ---------------------------------------------------------------- builders every family's registry shares
def build_generative_adapter(cfg, models: OpenedModels, **job) -> Method:
    """The generative adapter with the section's `encode_strategy`."""
    check_generator(models.generator, models.base_model)
    return GenerativeAdapterMethod(models.generator, models.tokenizer, generation_settings(cfg), cfg.encode_strategy)


def build_closed_book(cfg, models: OpenedModels, **job) -> Method:
    return ClosedBook(models.base_model, models.tokenizer, generation_settings(cfg))


def encode_strategy_setting(section: str) -> Callable[[Any, Mapping[str, str]], dict]:
    """A registry entry's `settings`: the generator's `<section>.encode_strategy`."""
    return lambda config, job: {"encode_strategy": getattr(config, section).encode_strategy}


def generative_adapter_entry(section: str, build: Callable[..., Method] = build_generative_adapter) -> MethodEntry:
    """The `generative_adapter` entry of the family whose config section is `section` (build: the family's own
    builder, where it reads contexts its own way)."""
    return MethodEntry(
        "generative_adapter",
        build,
        "generative adapter jobs",
        inputs=("generator",),
        settings=encode_strategy_setting(section),
    )
