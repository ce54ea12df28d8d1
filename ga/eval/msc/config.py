"""The `msc_eval` section: personalization on multi-session chats (docs/method.md#personalization).

Which benchmarks and methods form the grid, how the conversations are cut into job batches (each cell
"benchmark x conversation batch x method" one Snakemake job, so adding a method runs only its jobs, and a failed
batch reruns alone), how answers are generated, how the generative adapter reads a conversation, the MSC source, and
the cluster resources of each method's jobs.

Benchmarks: `msc` (MemGPT's `MSC-Self-Instruct`, 500 conversations, one JSONL file on the hub) and `synthetic_chat`
(the embedded twin: the held-out personas of `sft_sources.synthetic_chat`, generated from the run's seed). The
conversation's text layout (session headers, speaker labels, separator) is the one instruction tuning used,
`sft_sources.synthetic_chat`'s, for both benchmarks.

What each job depends on (the rules' params; `ga.eval.msc.jobs` computes them):
- conversations job (one per benchmark): the source (`msc.*`, or the whole `sft_sources.synthetic_chat` block for
  the twin), the layout (`sft_sources.synthetic_chat`'s header / labels / separator), `max_conversations`, the base
  model (token counts);
- evaluation job (benchmark x batch x method): `conversations_per_batch`, `max_conversations`, `max_new_tokens`,
  `batch_size`, `max_batch_tokens`, the base model, and the method's own settings only (`encode_strategy` for the
  generative adapter, `max_prompt_tokens` for in-context prompting); the generator folder is an input of the
  generative adapter's jobs only;
- summary job: the base model id (which paper numbers stand beside the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ga.eval.config import batch_size_setting, max_batch_tokens_setting, max_new_tokens_setting
from ga.eval.family import check_names
from ga.eval.msc.methods import REGISTRY
from ga.section import ConfigError, ConfigSection, setting

BENCHMARKS = ("msc", "synthetic_chat")
METHODS = REGISTRY.names
"""`other_user_adapter` is this project's control, not the paper's: the generative adapter of another user's
conversation, so its F1 is what the adapter earns without this user's facts (the answer's form, guesses)."""
ENCODE_STRATEGIES = ("sequential", "streaming", "session_streaming")
"""sequential (the paper's): the conversation's tokens in windows of the generator's length, one forward pass;
streaming: the same windows one at a time (the same state); session_streaming: one session at a time through
`GenerativeAdapter.update`, each session in windows of its own (equal to sequential when every session fills whole
windows, see ga/eval/msc/encoding.py)."""
MSC_CONVERSATIONS = 500


@dataclass
class MscSourceConfig(ConfigSection):
    """MemGPT's Multi-Session Chat self-instruct set: one JSONL file, one conversation a line (`previous_dialogs`,
    `dialog`, `personas`, `self_instruct` {`B`: the question, `A`: the answer}); downloaded once with
    `huggingface_hub` and cached by revision."""

    hub_id: str = setting("MemGPT/MSC-Self-Instruct", "hub dataset repository (owner/name)", pattern=r"[^/\s]+/[^/\s]+")
    revision: str | None = setting(
        None, "pinned hub commit (40 hex digits); null: the default branch at download time", pattern=r"[0-9a-f]{40}"
    )
    filename: str = setting("msc_self_instruct.jsonl", "the file of the repository that holds the conversations")
    conversations: int = setting(
        MSC_CONVERSATIONS,
        "conversations the file holds: the job batches are planned from "
        "it before the download, and the conversations job checks it",
        minimum=1,
    )
    assistant_speaker: str = setting(
        "Speaker 1",
        "the speaker whose turns are the assistant's: MemGPT's agent "
        "plays Speaker 1, who answers `self_instruct.A` to Speaker 2's "
        "question `self_instruct.B`",
    )
    user_speaker: str = setting("Speaker 2", "the other speaker (the user's turns)")

    def check(self) -> None:
        if self.assistant_speaker == self.user_speaker:
            raise ConfigError(f"user_speaker: must differ from assistant_speaker ({self.assistant_speaker!r})")


MscMethodResources = REGISTRY.resources_section()


@dataclass
class MscEvalConfig(ConfigSection):
    """Personalization: a multi-session conversation becomes an adapter (or the prompt), then questions about what
    was said in it are answered; SQuAD token F1 (the paper's number) and ROUGE-L recall (MemGPT's), with the costs
    of the paper's Table 1 (inference TFLOPs per query, extra storage per user)."""

    section_doc: ClassVar[str] = (
        "personalization on multi-session chats: benchmarks x conversation batches x methods, each cell one job"
    )

    benchmarks: list[str] = setting(
        ["synthetic_chat"], f"benchmarks to evaluate, among {list(BENCHMARKS)}", min_items=1
    )
    methods: list[str] = setting(list(METHODS), f"methods to evaluate, among {list(METHODS)}", min_items=1)
    encode_strategy: str = setting(
        "sequential",
        "how the generative adapter reads a conversation: sequential "
        "(windows in one forward pass, the paper's), streaming (the same "
        "windows one by one) or session_streaming (one session at a time "
        "through GenerativeAdapter.update)",
        choices=ENCODE_STRATEGIES,
    )
    conversations_per_batch: int = setting(
        50,
        "conversations per evaluation job (a benchmark's conversations, in "
        "order, are cut into batches of this many; each batch x method is "
        "one job)",
        minimum=1,
    )
    max_conversations: int | None = setting(
        None,
        "evaluate only the first n conversations of each benchmark (null: all of them); recorded in every result",
        minimum=1,
    )
    max_new_tokens: int = max_new_tokens_setting(20)
    batch_size: int = batch_size_setting("questions")
    max_batch_tokens: int | None = max_batch_tokens_setting()
    max_prompt_tokens: int | None = setting(
        None,
        "full-conversation prompting keeps the last this many tokens of "
        "the conversation so the prompt fits (null: the base model's "
        "context limit)",
        minimum=1,
    )
    msc: MscSourceConfig = setting(default_factory=MscSourceConfig, doc="Multi-Session Chat source")
    resources: MscMethodResources = setting(default_factory=MscMethodResources, doc="cluster resources per method")

    def check(self) -> None:
        check_names("benchmarks", self.benchmarks, BENCHMARKS)
        check_names("methods", self.methods, METHODS)
