"""The knowledge-QA methods (docs/method.md#knowledge-acquisition) and the family's registry, `REGISTRY`.

  generative_adapter     `ga.eval.methods.GenerativeAdapterMethod`, strategy `knowledge_eval.encode_strategy`
  closed_book            `ga.eval.methods.ClosedBook`
  in_context             `ga.eval.methods.InContext`; with `knowledge_eval.prompt_cache` (default) the prompt up to
                         the question is run once per context and every question continues from its KV cache
  bm25                   the context cut into chunks of `bm25.chunk_tokens` base-model tokens, ranked per question by
                         Okapi BM25 (bm25s, Lucene's variant; words: lowercased runs of letters, digits and
                         underscores); the top `bm25.top_k`, best first and separated by a blank line, take the
                         context's place in the in-context layout
  continual_pretraining  a fresh LoRA trained on the context's text (LM loss, `ContextFormat` ids) per context, then
                         closed-book answers with it
  qa_finetuning          one LoRA per benchmark trained on question-answer chats (`ga.eval.lora.train_qa_lora`),
                         closed-book answers with it

Storage per context (`ga.eval.methods`): the LoRA for continual pretraining, and nothing for QA fine-tuning (its one
LoRA is shared by every context of a benchmark).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ga.eval import costs
from ga.eval.contexts import PASSAGE_SEPARATOR, Context
from ga.eval.family import MethodEntry, MethodRegistry, OpenedModels
from ga.eval.generation import GenerationSettings, pad_id
from ga.eval.methods import (
    Contextualized,
    InContext,
    LoraAnswering,
    Method,
    build_closed_book,
    generation_settings,
    generative_adapter_entry,
)

WORD = re.compile(r"\w+")
"""BM25's words: runs of Unicode letters, digits and underscores, lowercased (no stemming, no stop words)."""
BM25_VARIANT = "lucene"
"""bm25s's Okapi BM25 with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)), which stays positive: the original
Robertson idf is zero or negative for a word in half the chunks or more, and a short context has only a few."""


@dataclass
class Bm25Index:
    chunks: list[str]
    retriever: Any
    """A `bm25s.BM25` over the chunks' words (None when the context has no tokens)."""


def bm25_words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class Bm25(InContext):
    name = "bm25"

    def __init__(
        self,
        base_model,
        tokenizer,
        settings: GenerationSettings,
        max_prompt_tokens: int | None,
        chunk_tokens: int,
        top_k: int,
        k1: float,
        b: float,
    ):
        super().__init__(base_model, tokenizer, settings, max_prompt_tokens)
        self.chunk_tokens, self.top_k, self.k1, self.b = chunk_tokens, top_k, k1, b

    def chunks(self, text: str) -> list[str]:
        """The text cut into spans of `chunk_tokens` base-model tokens (character spans of the original text, so
        no token is decoded apart from its neighbours)."""
        offsets = self.chat_format.backend.encode(text, add_special_tokens=False).offsets
        starts = [offsets[i][0] for i in range(0, len(offsets), self.chunk_tokens)]
        return [text[start:stop] for start, stop in zip(starts, starts[1:] + [len(text)])]

    def contextualize(self, context: Context) -> Contextualized:
        import bm25s

        chunks = self.chunks(context.text)
        retriever = None
        if chunks:
            retriever = bm25s.BM25(k1=self.k1, b=self.b, method=BM25_VARIANT)
            retriever.index([bm25_words(chunk) for chunk in chunks], show_progress=False)
        tokens = self._text_tokens(context.text)
        return Contextualized(
            payload=Bm25Index(chunks, retriever),
            storage_floats=costs.kv_cache_floats(self.base_model.config, tokens),
            context_tokens=tokens,
            notes={"chunks": len(chunks)},
        )

    def retrieve(self, index: Bm25Index, question: str) -> list[int]:
        """Indices of the top_k chunks for the question, best first (ties: earlier chunk first)."""
        import numpy as np

        if index.retriever is None:
            return []
        words = [word for word in bm25_words(question) if word in index.retriever.vocab_dict]
        scores = index.retriever.get_scores(words) if words else np.zeros(len(index.chunks))
        return np.argsort(-np.asarray(scores), kind="stable")[: self.top_k].tolist()

    def generate(self, contextualized, questions):
        index: Bm25Index = contextualized.payload
        retrieved = [self.retrieve(index, question.question) for question in questions]
        contexts = [PASSAGE_SEPARATOR.join(index.chunks[i].strip() for i in chunk_ids) for chunk_ids in retrieved]
        generations = self._prompted(contexts, questions)
        return [
            replace(generation, notes={**generation.notes, "retrieved_chunks": chunk_ids})
            for generation, chunk_ids in zip(generations, retrieved)
        ]


class ContinualPretraining(LoraAnswering):
    name = "continual_pretraining"

    def __init__(self, base_model, tokenizer, settings: GenerationSettings, training, seed: int):
        from ga.format import ContextFormat

        super().__init__(base_model, tokenizer, settings)
        self.training, self.seed = training, seed
        self.context_format = ContextFormat.from_tokenizer(tokenizer)

    def contextualize(self, context: Context) -> Contextualized:
        from ga.eval.lora import train_lora

        ids = self.context_format.ids(context.text)
        trained = train_lora(self.base_model, [ids], self.training, self.seed, pad_id=pad_id(self.tokenizer))
        shapes = trained.shapes
        return Contextualized(
            payload=trained,
            storage_floats=costs.lora_floats(shapes),
            context_tokens=len(ids),
            notes={
                "lora_steps": trained.steps,
                "lora_first_loss": trained.losses[0],
                "lora_final_loss": trained.losses[-1],
            },
            flops=costs.lora_training_flops(self.base_model.config, trained.trained_lengths, shapes),
        )

    def answering_lora(self, contextualized):
        return contextualized.payload


class QaFinetuning(LoraAnswering):
    name = "qa_finetuning"

    def __init__(self, base_model, tokenizer, settings: GenerationSettings, qa_lora_dir: str | Path):
        from ga.eval.lora import load_lora

        super().__init__(base_model, tokenizer, settings)
        self.lora = load_lora(qa_lora_dir)

    def contextualize(self, context: Context) -> Contextualized:
        # the benchmark's one LoRA serves every context: nothing is stored per context
        return Contextualized(
            payload=None,
            storage_floats=0,
            context_tokens=0,
            notes={"shared_lora_floats": costs.lora_floats(self.lora.shapes)},
        )

    def answering_lora(self, contextualized):
        return self.lora


# ---------------------------------------------------------------- the registry
def _in_context(cfg, models: OpenedModels, **job) -> Method:
    return InContext(
        models.base_model, models.tokenizer, generation_settings(cfg), cfg.max_prompt_tokens, cfg.prompt_cache
    )


def _bm25(cfg, models: OpenedModels, **job) -> Method:
    return Bm25(
        models.base_model,
        models.tokenizer,
        generation_settings(cfg),
        cfg.max_prompt_tokens,
        cfg.bm25.chunk_tokens,
        cfg.bm25.top_k,
        cfg.bm25.k1,
        cfg.bm25.b,
    )


def _continual_pretraining(cfg, models: OpenedModels, seed: int = 0, **job) -> Method:
    return ContinualPretraining(
        models.base_model, models.tokenizer, generation_settings(cfg), cfg.continual_pretraining, seed
    )


def _qa_finetuning(cfg, models: OpenedModels, qa_lora_dir: str | Path | None = None, **job) -> Method:
    if qa_lora_dir is None:
        raise ValueError("qa_finetuning: needs qa_lora_dir= (the folder written by ga.eval.lora.train_qa_lora)")
    return QaFinetuning(models.base_model, models.tokenizer, generation_settings(cfg), qa_lora_dir)


REGISTRY = MethodRegistry(
    "knowledge_eval",
    generative_adapter_entry("knowledge_eval"),
    MethodEntry("closed_book", build_closed_book, "closed-book jobs"),
    MethodEntry(
        "in_context",
        _in_context,
        "in-context prompting jobs",
        settings=lambda config, job: {
            "max_prompt_tokens": config.knowledge_eval.max_prompt_tokens,
            "prompt_cache": config.knowledge_eval.prompt_cache,
        },
    ),
    MethodEntry(
        "bm25",
        _bm25,
        "BM25 retrieval jobs",
        settings=lambda config, job: {"bm25": config.knowledge_eval.bm25.depends_on()},
    ),
    MethodEntry(
        "continual_pretraining",
        _continual_pretraining,
        "continual pretraining jobs (a LoRA trained per context)",
        settings=lambda config, job: {
            "seed": config.seed,
            "continual_pretraining": config.knowledge_eval.continual_pretraining.depends_on(),
        },
    ),
    MethodEntry(
        "qa_finetuning", _qa_finetuning, "QA fine-tuning jobs (and its one LoRA per benchmark)", inputs=("qa_lora",)
    ),
)
"""Every knowledge-QA method: its builder, its own settings, its model-file inputs, its resources' doc."""


def build_method(
    name: str, cfg, base_model, tokenizer, generator=None, qa_lora_dir: str | Path | None = None, seed: int = 0
) -> Method:
    """The method `name` (one of `REGISTRY`) as `cfg` (the `knowledge_eval` section) configures it.
    generator: a GenerativeAdapter around `base_model` (generative_adapter only); qa_lora_dir: `train_qa_lora`'s
    folder (qa_finetuning only)."""
    return REGISTRY[name].build(cfg, OpenedModels(base_model, tokenizer, generator), qa_lora_dir=qa_lora_dir, seed=seed)
