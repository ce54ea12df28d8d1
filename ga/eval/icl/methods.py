"""The in-context-learning methods behind the knowledge-QA interface (`ga.eval.methods.Method`): an episode is a
`Context` whose text is the k demonstrations and whose questions are the task's test queries.

  generative_adapter    the demonstrations become the adapter (as `ga.eval.methods.GenerativeAdapterMethod` does
                        for a knowledge context); queries answered closed-book inside it
  zero_shot             the base model, the query alone (`ClosedBook`)
  few_shot              the demonstrations and the query in one user turn, joined by the demonstration separator
                        (`InContext` with the ICL layout), so the prompt reads exactly as the adapter's context
                        followed by the query
  few_shot_finetuning   a fresh PEFT LoRA trained on the k demonstrations as one-turn chats (query -> answer, loss
                        on the answer and its end-of-turn token, `ga.eval.lora.qa_chats`), with early stopping on
                        the validation loss over another seed's examples (`IclEpisode.validation`); queries
                        closed-book with it

Every query is "Input: x\\nOutput:" (the benchmark's SFT question template) as the user turn of the base model's chat
template, answered greedily (at most `icl_eval.max_new_tokens`, cut at the first newline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ga.eval import costs
from ga.eval.contexts import Context
from ga.eval.family import MethodEntry, MethodRegistry, OpenedModels
from ga.eval.generation import GenerationSettings, pad_id
from ga.eval.methods import (
    ClosedBook,
    Contextualized,
    InContext,
    LoraAnswering,
    Method,
    generation_settings,
    generative_adapter_entry,
)


@dataclass(frozen=True)
class IclFormat:
    """How examples are written: the benchmark's SFT format (`sft_sources.metaicl` / `sft_sources.synthetic_icl`),
    so that the evaluation reads exactly like instruction tuning's ICL records."""

    demonstration_template: str
    """One demonstration, with {input} and {output}: "Input: {input}\\nOutput: {output}"."""
    question_template: str
    """One query, with {input}: "Input: {input}\\nOutput:"."""
    separator: str
    """Between demonstrations (and before the query in few-shot prompting): a blank line."""

    @classmethod
    def of(cls, source_cfg) -> IclFormat:
        """From an SFT source block with `demonstration_template`, `question_template`, `demonstration_separator`."""
        return cls(source_cfg.demonstration_template, source_cfg.question_template, source_cfg.demonstration_separator)

    def demonstration(self, source: str, target: str) -> str:
        return self.demonstration_template.format(input=source, output=target)

    def question(self, source: str) -> str:
        return self.question_template.format(input=source)

    def context(self, examples: Sequence[tuple[str, str]]) -> str:
        return self.separator.join(self.demonstration(source, target) for source, target in examples)

    @property
    def prompt_template(self) -> str:
        """Few-shot prompting's user turn: the demonstrations, the separator, the query."""
        return "{context}" + self.separator.replace("{", "{{").replace("}", "}}") + "{question}"


@dataclass(frozen=True)
class IclEpisode(Context):
    """One k-shot episode of a task: `text` is the demonstrations (`IclFormat.context`), `questions` the queries."""

    demonstrations: tuple[tuple[str, str], ...] = ()
    """(input, output) of the k demonstrations, in order."""
    validation: tuple[tuple[str, str], ...] = ()
    """(input, output) of another seed's examples, for few-shot fine-tuning's early stopping."""


class ZeroShot(ClosedBook):
    name = "zero_shot"


class FewShotPrompting(InContext):
    name = "few_shot"


class FewShotFinetuning(LoraAnswering):
    name = "few_shot_finetuning"

    def __init__(self, base_model, tokenizer, settings: GenerationSettings, training, icl_format: IclFormat, seed: int):
        super().__init__(base_model, tokenizer, settings)
        self.training, self.icl_format, self.seed = training, icl_format, seed

    def _chats(self, examples: Sequence[tuple[str, str]]):
        from ga.eval.lora import qa_chats

        pairs = [(self.icl_format.question(source), target) for source, target in examples]
        return qa_chats(self.chat_format, pairs, self.training.max_tokens)

    def contextualize(self, context: Context) -> Contextualized:
        from ga.eval.lora import train_lora

        if not isinstance(context, IclEpisode) or not context.demonstrations:
            raise ValueError("few_shot_finetuning: needs an IclEpisode with at least one demonstration")
        ids, labels, too_long = self._chats(context.demonstrations)
        if not ids:
            raise ValueError(
                f"few_shot_finetuning: none of the {len(context.demonstrations)} demonstrations fits "
                f"max_tokens {self.training.max_tokens}"
            )
        validation_ids, validation_labels, validation_too_long = self._chats(context.validation)
        validation = (validation_ids, validation_labels) if validation_ids else None
        trained = train_lora(
            self.base_model,
            ids,
            self.training,
            self.seed,
            labels=labels,
            pad_id=pad_id(self.tokenizer),
            validation=validation,
            patience=self.training.patience,
        )
        shapes = trained.shapes
        config = self.base_model.config
        validation_flops = sum(
            costs.forward_flops(config, length) + costs.lora_delta_flops(shapes, length)
            for length in trained.validation_lengths
        )
        return Contextualized(
            payload=trained,
            storage_floats=costs.lora_floats(shapes),
            context_tokens=sum(map(len, ids)),
            notes={
                "lora_steps": trained.steps,
                "lora_first_loss": trained.losses[0],
                "lora_final_loss": trained.losses[-1],
                "epochs_run": len(trained.validation_losses) or None,
                "best_epoch": trained.best_epoch,
                "best_validation_loss": (
                    trained.validation_losses[trained.best_epoch - 1] if trained.best_epoch else None
                ),
                "validation_examples": len(validation_ids),
                "demonstrations_over_max_tokens": too_long,
                "validation_over_max_tokens": validation_too_long,
                "validation_flops": validation_flops,
            },
            flops=costs.lora_training_flops(config, trained.trained_lengths, shapes) + validation_flops,
        )

    def answering_lora(self, contextualized):
        return contextualized.payload


def _zero_shot(cfg, models: OpenedModels, **job) -> Method:
    return ZeroShot(models.base_model, models.tokenizer, generation_settings(cfg))


def _few_shot(cfg, models: OpenedModels, icl_format: IclFormat, **job) -> Method:
    # the demonstrations run once per episode, every query continues from their KV cache (the same answers as
    # whole prompts: tests/test_eval_methods.py)
    return FewShotPrompting(
        models.base_model,
        models.tokenizer,
        generation_settings(cfg),
        cfg.max_prompt_tokens,
        prompt_cache=True,
        prompt_template=icl_format.prompt_template,
    )


def _few_shot_finetuning(cfg, models: OpenedModels, icl_format: IclFormat, seed: int = 0, **job) -> Method:
    return FewShotFinetuning(
        models.base_model, models.tokenizer, generation_settings(cfg), cfg.few_shot_finetuning, icl_format, seed
    )


def validation_seed(seeds: Sequence[int], seed: int) -> int:
    """The seed whose training examples stop few-shot fine-tuning of `seed` early: the next of `seeds`,
    cyclically (so adding a seed changes the validation seed of one existing seed only)."""
    seeds = list(seeds)
    if seed not in seeds or len(seeds) < 2:
        raise ValueError(f"validation_seed: {seed} must be one of at least two seeds, got {seeds}")
    return seeds[(seeds.index(seed) + 1) % len(seeds)]


def icl_format(config, benchmark: str) -> IclFormat:
    """The demonstration format of `benchmark`: its instruction-tuning source's (`sft_sources.metaicl` for MetaICL,
    `sft_sources.synthetic_icl` for the twin)."""
    return IclFormat.of(config.sft_sources.metaicl if benchmark == "metaicl" else config.sft_sources.synthetic_icl)


def _few_shot_finetuning_settings(config, job) -> dict:
    cfg = config.icl_eval
    return {
        "seed": config.seed,
        "few_shot_finetuning": cfg.few_shot_finetuning.depends_on(),
        "validation_seed": validation_seed(cfg.seeds, int(job["seed"])),
    }


REGISTRY = MethodRegistry(
    "icl_eval",
    generative_adapter_entry("icl_eval"),
    MethodEntry("zero_shot", _zero_shot, "zero-shot jobs"),
    MethodEntry(
        "few_shot",
        _few_shot,
        "few-shot prompting jobs",
        settings=lambda config, job: {"max_prompt_tokens": config.icl_eval.max_prompt_tokens},
    ),
    MethodEntry(
        "few_shot_finetuning",
        _few_shot_finetuning,
        "few-shot fine-tuning jobs (a LoRA trained per job)",
        inputs=("validation",),
        settings=_few_shot_finetuning_settings,
    ),
)
"""Every in-context-learning method: its builder, its own settings, its inputs (model files, the validation
seed's episodes), its resources' doc."""


def build_icl_method(
    name: str, cfg, base_model, tokenizer, icl_format: IclFormat, generator=None, seed: int = 0
) -> Method:
    """The method `name` (one of `REGISTRY`) as `cfg` (the `icl_eval` section) configures it.
    generator: a GenerativeAdapter around `base_model` (generative_adapter only); seed: the few-shot LoRA's seed (the
    run's)."""
    return REGISTRY[name].build(cfg, OpenedModels(base_model, tokenizer, generator), icl_format=icl_format, seed=seed)
