"""The personalization methods, through the knowledge-QA Method interface (ga/eval/methods.py): a conversation is a
Context, contextualized once per user, then its questions are answered.

  generative_adapter   the conversation's context text (ContextFormat, as instruction tuning encoded
                       `synthetic_chat`'s contexts) becomes an adapter; `msc_eval.encode_strategy` sequential or
                       streaming is `GenerativeAdapterMethod` itself, session_streaming is `SessionStreamingAdapter`
                       (one session at a time through `GenerativeAdapter.update`, ga/eval/msc/encoding.py)
  closed_book          the question alone (`ClosedBook`)
  in_context           full-conversation prompting (`InContext`): the conversation and the question in the user turn
  other_user_adapter   the control (`OtherUserAdapter`, not the paper's): the generative adapter, encoded as above,
                       of another user's conversation (`donors`), then the same questions; its F1 is what the
                       adapter scores without this user's facts

Storage per user is the method's storage per context: the adapter's rank-r LoRA factors, the conversation's KV cache
for prompting, nothing for closed-book. `REGISTRY` is the family's registry. A `Conversation`
(ga/eval/msc/conversations.py) and its session encoding are imported where they are used: the config section reads the
registry, and a run config loads without the work code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ga.eval import costs
from ga.eval.family import MethodEntry, MethodRegistry, OpenedModels
from ga.eval.generation import GenerationSettings
from ga.eval.methods import (
    Contextualized,
    GenerativeAdapterMethod,
    InContext,
    Method,
    build_closed_book,
    check_generator,
    encode_strategy_setting,
    generation_settings,
    generative_adapter_entry,
)

if TYPE_CHECKING:
    from ga.eval.msc.conversations import Conversation

SESSION_STREAMING = "session_streaming"


class SessionStreamingAdapter(GenerativeAdapterMethod):
    """The generative adapter reading a conversation one session at a time (same name, `generative_adapter`: the
    strategy is a setting of the method, recorded with its results)."""

    def __init__(self, generator, tokenizer, settings: GenerationSettings):
        super().__init__(generator, tokenizer, settings, SESSION_STREAMING)

    def contextualize(self, context: Conversation) -> Contextualized:
        from ga.eval.msc.conversations import Conversation
        from ga.eval.msc.encoding import encode_sessions, session_segments, window_aligned

        if not isinstance(context, Conversation):
            raise TypeError(
                f"session streaming reads a Conversation (with its sessions), got "
                f"{type(context).__name__} {context.context_id!r}"
            )
        window = self.generator.config.window
        segments = session_segments(self.context_format, context)
        state = encode_sessions(self.generator, segments, window)
        chunks, normalizations = costs.session_streaming_chunks([len(segment) for segment in segments], window)
        shapes = costs.generator_lora_shapes(self.generator)
        return Contextualized(
            payload=state,
            storage_floats=costs.lora_floats(shapes),
            context_tokens=sum(map(len, segments)),
            notes={
                "state_floats": sum(s.numel() for s in state.sums.values()),
                "sessions": len(segments),
                "window_aligned": int(window_aligned(segments, window)),
            },
            flops=costs.chunks_encode_flops(self.generator, chunks, normalizations),
        )


class OtherUserAdapter(Method):
    """The generative adapter of another user's conversation: `donors` maps a conversation's id to the conversation
    whose adapter answers its questions."""

    name = "other_user_adapter"

    def __init__(self, adapter: GenerativeAdapterMethod, donors: Mapping[str, Conversation]):
        super().__init__(adapter.base_model, adapter.tokenizer, adapter.settings)
        self.adapter, self.donors = adapter, donors

    def contextualize(self, context: Conversation) -> Contextualized:
        donor = self.donors.get(context.context_id)
        if donor is None or donor.context_id == context.context_id:
            raise ValueError(f"other_user_adapter: no other user's conversation for {context.context_id!r}")
        return self.adapter.contextualize(donor)

    def generate(self, contextualized, questions):
        return self.adapter.generate(contextualized, questions)

    def lora_shapes(self, contextualized):
        return self.adapter.lora_shapes(contextualized)


def _adapter(cfg, models: OpenedModels) -> GenerativeAdapterMethod:
    """The generative adapter reading a conversation with `msc_eval.encode_strategy`."""
    check_generator(models.generator, models.base_model)
    settings = generation_settings(cfg)
    if cfg.encode_strategy == SESSION_STREAMING:
        return SessionStreamingAdapter(models.generator, models.tokenizer, settings)
    return GenerativeAdapterMethod(models.generator, models.tokenizer, settings, cfg.encode_strategy)


def _generative_adapter(cfg, models: OpenedModels, **job) -> Method:
    return _adapter(cfg, models)


def _in_context(cfg, models: OpenedModels, **job) -> Method:
    # the conversation runs once, every question continues from its KV cache: the paper's per-query cost of
    # full-conversation prompting (Table 1), and the same answers as whole prompts (tests/test_eval_methods.py)
    return InContext(
        models.base_model, models.tokenizer, generation_settings(cfg), cfg.max_prompt_tokens, prompt_cache=True
    )


def _other_user_adapter(cfg, models: OpenedModels, donors: Mapping[str, Conversation] | None = None, **job) -> Method:
    adapter = _adapter(cfg, models)
    if donors is None:
        raise ValueError("other_user_adapter needs the other users' conversations (donors)")
    return OtherUserAdapter(adapter, donors)


REGISTRY = MethodRegistry(
    "msc_eval",
    generative_adapter_entry("msc_eval", _generative_adapter),
    MethodEntry("closed_book", build_closed_book, "closed-book jobs"),
    MethodEntry(
        "in_context",
        _in_context,
        "full-conversation prompting jobs",
        settings=lambda config, job: {"max_prompt_tokens": config.msc_eval.max_prompt_tokens},
    ),
    MethodEntry(
        "other_user_adapter",
        _other_user_adapter,
        "other-user adapter jobs (the control)",
        inputs=("generator",),
        settings=encode_strategy_setting("msc_eval"),
    ),
)
"""Every personalization method: its builder, its own settings, its model-file inputs, its resources' doc."""


def build_msc_method(
    name: str, cfg, base_model, tokenizer, generator=None, donors: Mapping[str, Conversation] | None = None
) -> Method:
    """The method `name` (one of `REGISTRY`) as `cfg` (the `msc_eval` section) configures it; generator: a
    GenerativeAdapter around `base_model` (the generator methods only); donors: other_user_adapter's other users
    (`ga.eval.msc.jobs.other_users`)."""
    return REGISTRY[name].build(cfg, OpenedModels(base_model, tokenizer, generator), donors=donors)
