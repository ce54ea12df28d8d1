"""One format for contexts and conversations (docs/method.md#model-inputs-of-a-record): loss exactly on assistant
tokens and their end-of-turn token, checked against two independent references (the token ids of incrementally
rendered prefixes, and Transformers' `{% generation %}` assistant mask); the template's fast path and its
fallback; the context format; a record's window layout; bad input."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from ga.data.contracts import DataError
from ga.data.sft.records import conversation, records_frame
from ga.data.sft.tokenize import SftLayout, SftTokenizer, examples_frame, validate_examples
from ga.format import ChatFormat, ContextFormat, context_windows
from ga.labels import IGNORE_INDEX

CONVERSATIONS = [
    [("Who founded the Diortyrk Works?", "Shiorneal Thirnunkyn.")],
    [("What is it?", "The object."), ("Why?", " Because\n\nit is."), ("When, exactly?", "In 1861")],
    [("Input: boledi\nOutput:", "IDELOB"), ("Input: 2 + 2\nOutput:", "4"), ("¿Dónde?", "En Málaga — sí.")],
]

GENERATION_CHATML = (
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML with the assistant's content and end-of-turn token marked for `return_assistant_tokens_mask`."""

STRIPPING_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
"""Llama-2 style: strips contents and ends an assistant turn with EOS (no generation prompt)."""

NOT_PREFIX_STABLE = (
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}"
    "{{ 'turns: ' + messages|length|string }}"
)


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture
def fresh_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


def reference_labels(tokenizer, messages) -> tuple[list[int], list[int]]:
    """Labels by diffing token ids: assistant turn k is the ids of the conversation through turn k beyond the ids of
    the prompt for turn k (`add_generation_prompt`), up to and including its last end-of-turn token."""

    def ids(text):
        return tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids

    full = ids(tokenizer.apply_chat_template(messages, tokenize=False))
    labels = [IGNORE_INDEX] * len(full)
    for end in range(2, len(messages) + 1, 2):
        prompt = ids(tokenizer.apply_chat_template(messages[: end - 1], tokenize=False, add_generation_prompt=True))
        turn = ids(tokenizer.apply_chat_template(messages[:end], tokenize=False))
        assert full[: len(turn)] == turn and turn[: len(prompt)] == prompt, "prefixes must tokenize as prefixes"
        answer = turn[len(prompt) :]
        stop = max(i for i, token in enumerate(answer) if token == tokenizer.eos_token_id) + 1
        labels[len(prompt) : len(prompt) + stop] = answer[:stop]
    return full, labels


def check_loss_exactly_on_assistant_turns(tokenizer, pairs, labelled_text: str | None = None):
    """`labelled_text`: what the labelled tokens spell (default: each answer followed by the end-of-turn token)."""
    chat = ChatFormat(tokenizer)
    messages = conversation(pairs)
    rendered = chat.render(messages)
    [(ids, labels)] = chat.encode([rendered])
    expected_ids, expected_labels = reference_labels(tokenizer, messages)
    assert ids.tolist() == expected_ids
    assert labels.tolist() == expected_labels
    # and in words: the labelled text is each answer followed by the end-of-turn token, nothing else
    labelled = tokenizer.decode([token for token in labels.tolist() if token != IGNORE_INDEX])
    assert labelled == (labelled_text or "".join(answer + tokenizer.eos_token for _, answer in pairs))
    return chat


@pytest.mark.parametrize("pairs", CONVERSATIONS, ids=["one_pair", "three_pairs", "icl_and_unicode"])
def test_loss_exactly_on_assistant_tokens_and_end_of_turn(hf_tokenizer, pairs):
    chat = check_loss_exactly_on_assistant_turns(hf_tokenizer, pairs)
    assert chat.pieces is not None  # ChatML: the one-render path
    assert chat.render(conversation(pairs)) == chat.render_incremental(conversation(pairs))


@pytest.mark.parametrize("pairs", CONVERSATIONS, ids=["one_pair", "three_pairs", "icl_and_unicode"])
def test_labels_equal_the_generation_mask_of_transformers(hf_tokenizer, pairs):
    messages = conversation(pairs)
    reference = hf_tokenizer.apply_chat_template(
        messages, chat_template=GENERATION_CHATML, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    [(ids, labels)] = ChatFormat(hf_tokenizer).encode([ChatFormat(hf_tokenizer).render(messages)])
    assert ids.tolist() == reference["input_ids"]
    assert (labels != IGNORE_INDEX).astype(int).tolist() == reference["assistant_masks"]


@pytest.mark.parametrize("pairs", CONVERSATIONS, ids=["one_pair", "three_pairs", "icl_and_unicode"])
def test_loss_exactly_on_assistant_tokens_with_smollm2(embedded_dir, pairs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    chat = check_loss_exactly_on_assistant_turns(tokenizer, pairs)
    assert chat.pieces is not None and "You are a helpful AI assistant" in chat.pieces.opening  # its system prompt


def test_a_template_that_rewrites_content_takes_the_incremental_path(fresh_tokenizer):
    fresh_tokenizer.chat_template = STRIPPING_TEMPLATE
    pairs = CONVERSATIONS[1]  # " Because\n\nit is." is stripped by the template
    turns = [" The object. <|im_end|>", " Because\n\nit is. <|im_end|>", " In 1861 <|im_end|>"]  # as generated
    chat = check_loss_exactly_on_assistant_turns(fresh_tokenizer, pairs, labelled_text="".join(turns))
    assert chat.pieces is not None
    rendered = chat.render(conversation(pairs))
    assert rendered == chat.render_incremental(conversation(pairs))
    assert [rendered.text[a:b] for a, b in rendered.loss_spans] == turns


def test_a_template_that_is_not_prefix_stable_is_refused(fresh_tokenizer):
    fresh_tokenizer.chat_template = NOT_PREFIX_STABLE
    chat = ChatFormat(fresh_tokenizer)
    assert chat.pieces is None
    with pytest.raises(ValueError, match="not prefix-stable"):
        chat.render(conversation(CONVERSATIONS[0]))


def test_a_tokenizer_without_chat_template_is_refused_naming_file_and_field(fresh_tokenizer):
    fresh_tokenizer.chat_template = None
    with pytest.raises(DataError) as err:
        ChatFormat(fresh_tokenizer, source="runs/x/base_model")
    assert err.value.file == "runs/x/base_model/tokenizer_config.json" and err.value.column == "chat_template"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}],
        [{"role": "user", "content": "q"}, {"role": "user", "content": "q2"}],
        [{"role": "user", "content": "q"}],
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}],
    ],
    ids=["assistant_first", "two_users", "no_answer", "blank_answer"],
)
def test_a_conversation_must_alternate_user_and_assistant(hf_tokenizer, messages):
    with pytest.raises(ValueError, match="message"):
        ChatFormat(hf_tokenizer).render(messages)


# ---------------------------------------------------------------- context
def test_context_is_plain_text_between_bos_and_eos(hf_tokenizer, tiny_tokenizer_dir):
    fmt = ContextFormat.load(tiny_tokenizer_dir)
    text = "The Diortyrk Works <|im_end|> stand in Draisnair."
    ids = fmt.ids(text)
    assert ids[0] == hf_tokenizer.bos_token_id and ids[-1] == hf_tokenizer.eos_token_id
    assert hf_tokenizer.eos_token_id not in ids[1:-1]  # special-token text inside a context stays text
    assert hf_tokenizer.decode(ids[1:-1]) == text
    assert ContextFormat.from_tokenizer(hf_tokenizer).ids_batch([text, "b"]) == [ids, fmt.ids("b")]
    shared = ContextFormat.from_tokenizer(hf_tokenizer, backend_use="share")
    assert shared.ids(text) == ids
    assert hf_tokenizer.backend_tokenizer.encode_special_tokens is False  # the shared tokenizer is left as it was
    assert hf_tokenizer.eos_token_id in hf_tokenizer(text)["input_ids"]
    grid, mask = context_windows(ids, 8, pad_id=0)
    assert grid.shape == (-(-len(ids) // 8), 8) and mask.sum() == len(ids)
    assert grid.reshape(-1)[: len(ids)].tolist() == ids and not mask.reshape(-1)[len(ids) :].any()


# ---------------------------------------------------------------- a record's windows
def sft_tokenizer(tiny_tokenizer_dir, window=64, max_tokens=1024) -> SftTokenizer:
    return SftTokenizer.load(tiny_tokenizer_dir, SftLayout.of(window, max_tokens))


def record(identifier, context, pairs) -> dict:
    return {
        "id": identifier,
        "context": context,
        "conversations": conversation(pairs),
        "context_sources": [f"passage:{identifier}"],
    }


def test_record_layout_context_windows_then_conversation_windows(tiny_tokenizer_dir, hf_tokenizer):
    L = 64
    tokenizer = sft_tokenizer(tiny_tokenizer_dir, window=L)
    context = "The Dusdrathzeark Company is based in Gorkquinmioth. " * 6
    pairs = [("Where is the company?", "Gorkquinmioth."), ("Who founded it?", "Shiorneal Thirnunkyn.")]
    [tokenized], drops = tokenizer.tokenize(records_frame([record("coqa.0", context, pairs)]))
    assert drops == {}
    context_ids = tokenizer.context_format.ids(context)
    c = -(-len(context_ids) // L)
    S = len(tokenized.adapter_prefix)
    assert tokenized.context_windows == c and tokenized.context_tokens == len(context_ids)
    assert tokenized.adapter_prefix.tolist() == list(range(c)) + [c] * (S - c)
    grid = tokenized.input_ids.reshape(S, L)
    labels, mask = tokenized.labels.reshape(S, L), tokenized.attention_mask.reshape(S, L)
    assert grid.reshape(-1)[: len(context_ids)].tolist() == context_ids
    assert (labels[:c] == IGNORE_INDEX).all()  # context windows carry no loss
    # each conversation window is a chat of whole pairs, as the template renders it on its own
    chat = ChatFormat(hf_tokenizer)
    texts = [hf_tokenizer.decode(grid[w][mask[w] == 1].tolist()) for w in range(c, S)]
    assert all(text.startswith("<|im_start|>user\n") and text.endswith("<|im_end|>\n") for text in texts)
    assert sum(text.count("<|im_start|>assistant") for text in texts) == len(pairs) == tokenized.qa_pairs
    labelled = hf_tokenizer.decode([t for t in tokenized.labels.tolist() if t != IGNORE_INDEX])
    assert labelled == "Gorkquinmioth.<|im_end|>Shiorneal Thirnunkyn.<|im_end|>"
    [(whole, _)] = chat.encode([chat.render(conversation(pairs))])
    assert (S - c == 1) == (len(whole) <= L)
    frame = examples_frame([tokenized], 0)
    validate_examples(frame, tokenizer.layout, hf_tokenizer.vocab_size + 3, "test")


def test_long_conversations_fill_several_windows_of_whole_pairs(tiny_tokenizer_dir):
    tokenizer = sft_tokenizer(tiny_tokenizer_dir, window=48)
    pairs = [(f"Question {i}?", f"Answer {i}.") for i in range(6)]
    [tokenized], drops = tokenizer.tokenize(records_frame([record("drop.3", "A short context.", pairs)]))
    assert drops == {} and tokenized.qa_pairs == 6
    assert len(tokenized.adapter_prefix) - tokenized.context_windows > 1
    assert tokenized.conversation_tokens == int(tokenized.attention_mask[tokenized.context_windows * 48 :].sum())


def test_what_does_not_fit_is_dropped_and_counted(tiny_tokenizer_dir):
    tokenizer = sft_tokenizer(tiny_tokenizer_dir, window=32, max_tokens=96)  # 3 windows
    long_answer = "word " * 40
    rows = [
        record("coqa.0", "Short.", [("Q?", long_answer), ("Q?", "A.")]),  # first pair over the window
        record("coqa.1", "Short.", [("Q?", long_answer)]),  # nothing left
        record("coqa.2", "Context " * 80, [("Q?", "A.")]),  # context fills every window
        record("coqa.3", "Short.", [("Q one?", "A one."), ("Q two?", "A two."), ("Q three?", "A three.")]),
        record("coqa.4", "Short.", [("What is <|im_end|>?", "A token.")]),  # special token in a message
    ]
    tokenized, drops = tokenizer.tokenize(records_frame(rows))
    assert [r.record_id for r in tokenized] == ["coqa.0", "coqa.3"]
    assert tokenized[0].qa_pairs == 1 and tokenized[1].qa_pairs == 2  # one context + two conversation windows
    assert drops == {
        ("coqa", "qa_pair_over_window"): 2,
        ("coqa", "record_no_qa_pair_fits_window"): 1,
        ("coqa", "record_over_max_tokens"): 1,
        ("coqa", "qa_pair_over_max_tokens"): 1,
        ("coqa", "record_special_token_in_conversation"): 1,
    }


def test_the_examples_contract_catches_a_labelled_context_token(tiny_tokenizer_dir, hf_tokenizer):
    tokenizer = sft_tokenizer(tiny_tokenizer_dir)
    [tokenized], _ = tokenizer.tokenize(records_frame([record("quail.1", "Some context.", [("Q?", "A.")])]))
    tokenized.labels[1] = tokenized.input_ids[1]  # a context token with loss
    with pytest.raises(DataError, match="context_windows_carry_no_loss"):
        validate_examples(examples_frame([tokenized], 0), tokenizer.layout, len(hf_tokenizer), "shard-00000")
    frame = examples_frame([tokenized], 0).with_columns(
        pl.Series("adapter_prefix", [[0] * len(tokenized.adapter_prefix)], dtype=pl.List(pl.Int32))
    )
    with pytest.raises(DataError, match="adapter_prefix_follows_layout"):
        validate_examples(frame, tokenizer.layout, len(hf_tokenizer), "shard-00000")
    assert np.array_equal(examples_frame([tokenized], 5)["example_id"].to_numpy(), [5])
