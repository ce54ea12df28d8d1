"""A conversation with a base model that carries one adapter: the adapter is merged into the weights once (so each
reply costs what the plain base model costs), every turn is rendered with the base model's own chat template by the
formatter that instruction tuning and evaluation use (`ga.format.ChatFormat`), and replies are greedy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ga.model import GenerativeAdapter
    from ga.state import AdapterState

USER, ASSISTANT = "user", "assistant"


class ChatSession:
    """Use as a context manager: the adapter is merged on entry and the base weights restored on exit."""

    def __init__(self, gam: GenerativeAdapter, tokenizer, state: AdapterState, max_new_tokens: int):
        from ga.format import ChatFormat

        self.gam, self.tokenizer, self.state, self.max_new_tokens = gam, tokenizer, state, max_new_tokens
        self.chat_format = ChatFormat(tokenizer)
        self.messages: list[dict] = []
        """The conversation so far: alternating user and assistant messages."""
        self.max_positions = getattr(gam.base_model.config, "max_position_embeddings", None)

    def __enter__(self) -> ChatSession:
        self.gam.merge(self.state)
        return self

    def __exit__(self, *exc) -> None:
        self.gam.unmerge()

    def prompt_ids(self, question: str) -> list[int]:
        """The conversation so far plus `question`, ready for the reply; the oldest turns are left out when the
        prompt and the reply would not fit the model's context."""
        messages = self.messages + [{"role": USER, "content": question}]
        ids = self.chat_format.prompt_ids(messages)
        while self.max_positions and len(ids) + self.max_new_tokens > self.max_positions and len(messages) > 1:
            messages = messages[2:]
            ids = self.chat_format.prompt_ids(messages)
        return ids

    def reply(self, question: str) -> str:
        """The greedy reply to `question` after the conversation so far (which then holds both)."""
        import torch

        ids = torch.tensor([self.prompt_ids(question)], device=next(self.gam.base_model.parameters()).device)
        with torch.no_grad():
            output = self.gam.base_model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        answer = self.tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True).strip()
        self.messages += [{"role": USER, "content": question}, {"role": ASSISTANT, "content": answer}]
        return answer
