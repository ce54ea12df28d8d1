"""The greedy-generation check after instruction tuning: answer F1 on held-out records, per dataset, with the
record's own context adapter, another record's, and none.

The question and reference answer come from the tokenized record itself: in the first conversation window, the
prompt is everything before the first labelled token (the chat up to the assistant's generation prompt) and the
reference is the first run of labelled tokens without its end-of-turn token. The context is the real tokens of
the context windows, encoded as training encoded them (sequential, fixed windows of the training length).

The `other` arm's context is `val_set.donor_for(index)`'s, one that shares no context source with the record's
(ga/data/sft/tokenize.py); where there is none the arm is skipped for that record and counted
(`other_unavailable`), and `other_f1` averages the records that had one.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import torch

from ga.eval.metrics import f1_score
from ga.labels import IGNORE_INDEX

ARMS = ("own", "other", "none")
SAMPLES_PER_DATASET = 2
"""Predictions kept per dataset for reading beside the scores."""


def first_question(example: dict, eos_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt ids, reference answer ids) of the first QA pair of a tokenized record."""
    c = int(example["context_windows"])
    ids, labels = example["input_ids"][c], example["labels"][c]
    labelled = (labels != IGNORE_INDEX).nonzero().flatten()
    if labelled.numel() == 0:
        raise ValueError(f"record {example['record_id']}: its first conversation window has no answer tokens")
    start = int(labelled[0])
    stop = start
    while stop < labels.shape[0] and labels[stop] != IGNORE_INDEX:
        stop += 1
    answer = ids[start:stop]
    if eos_id is not None and answer.numel() and int(answer[-1]) == eos_id:
        answer = answer[:-1]
    return ids[:start], answer


def context_ids(example: dict) -> torch.Tensor:
    c = int(example["context_windows"])
    return example["input_ids"][:c][example["attention_mask"][:c].bool()]


@torch.no_grad()
def answer_f1(model, tokenizer, val_set, records_per_dataset: int, max_new_tokens: int) -> dict:
    """{"per_dataset": {dataset: {arm_f1: mean F1, records: n, other_unavailable: records without a donor}},
    "samples": a few predictions for reading} over the first `records_per_dataset` held-out records of each dataset
    (distinct records, in stored order). `other_f1` is missing where no record of the dataset had a donor."""
    if records_per_dataset == 0:
        return {}
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    chosen: dict[str, list[int]] = defaultdict(list)
    seen = set()
    for index in range(len(val_set)):
        dataset, record = val_set.datasets[index], val_set.record_ids[index]
        if record not in seen and len(chosen[dataset]) < records_per_dataset:
            chosen[dataset].append(index)
            seen.add(record)
    was_training = model.training
    model.eval()
    window = model.config.window
    device = next(model.generator_parameters()).device
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    without_donor: Counter = Counter()
    samples = []
    for dataset, indices in chosen.items():
        for position, index in enumerate(indices):
            example = val_set[index]
            donor = val_set.donor_for(index)
            prompt, reference = first_question(example, eos_id)
            contexts = {"own": example, "other": None if donor is None else val_set[donor]}
            states = {
                arm: model.encode(context_ids(context), strategy="sequential", window=window, chunking="fixed")
                for arm, context in contexts.items()
                if context is not None
            }
            states["none"] = None
            without_donor[dataset] += donor is None
            reference_text = tokenizer.decode(reference, skip_special_tokens=True)
            predictions = {}
            for arm in (arm for arm in ARMS if arm in states):
                output = model.generate(
                    prompt[None].to(device),
                    states[arm],
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=eos_id,
                    pad_token_id=pad_id,
                )
                predictions[arm] = tokenizer.decode(output[0, prompt.shape[0] :], skip_special_tokens=True).strip()
                scores[dataset][arm].append(f1_score(predictions[arm], reference_text))
            if position < SAMPLES_PER_DATASET:
                samples.append({"record_id": val_set.record_ids[index], "reference": reference_text, **predictions})
    if was_training:
        model.train()
    result = {
        dataset: {
            **{f"{arm}_f1": sum(values) / len(values) for arm, values in arms.items()},
            "records": len(arms["own"]),
            "other_unavailable": without_donor[dataset],
        }
        for dataset, arms in scores.items()
    }
    return {"per_dataset": result, "samples": samples}
