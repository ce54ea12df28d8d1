"""One method over a list of contexts: per-question predictions and per-context costs (docs/method.md#costs).

For each context: contextualize once (timed, analytic FLOPs, peak memory), then answer all its questions (batched by
the method's generation settings; timed, FLOPs per answer, peak memory). Every question gets exactly one row, whatever
happens to it; the outcome says what:

  answered               a prediction was made
  no_references          a prediction was made, but the question has no reference answer (scoring decides)
  failed                 answering this question raised an error (recorded in `error`); when a batch fails, its
                         questions are retried one by one so that only the failing ones are lost
  contextualize_failed   contextualizing its context raised an error; no question of that context was answered

Failures are counted, never raised: a grid of many contexts is not lost to one bad input (KeyboardInterrupt and other
non-Exception errors still stop it).
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Number

from ga.eval.contexts import Context, Question
from ga.eval.costs import PeakMemory, Stopwatch
from ga.eval.generation import Generation
from ga.eval.methods import Contextualized, Method

OUTCOMES = ("answered", "no_references", "failed", "contextualize_failed")


def _error(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def answer_questions(
    method: Method, contextualized: Contextualized, questions: Sequence[Question]
) -> list[tuple[Generation | None, str | None]]:
    """(generation, None) or (None, error) for every question, in order."""
    try:
        return [(generation, None) for generation in method.generate(contextualized, questions)]
    except Exception as batch_error:  # find the failing questions: retry one by one
        if len(questions) == 1:
            return [(None, _error(batch_error))]
    results = []
    for question in questions:
        try:
            results.append((method.generate(contextualized, [question])[0], None))
        except Exception as err:
            results.append((None, _error(err)))
    return results


def _row(
    method: Method,
    context: Context,
    question: Question,
    outcome: str,
    generation: Generation | None = None,
    error: str | None = None,
    query_flops: int | None = None,
) -> dict:
    return {
        "method": method.name,
        "context_id": context.context_id,
        "question_id": question.question_id,
        "question": question.question,
        "references": list(question.references),
        "prediction": None if generation is None else generation.text,
        "outcome": outcome,
        "error": error,
        "prompt_tokens": None if generation is None else generation.prompt_tokens,
        "new_tokens": None if generation is None else generation.new_tokens,
        "query_flops": query_flops,
        "notes": {} if generation is None else dict(generation.notes),
    }


def _summed_notes(generations: Sequence[Generation]) -> dict:
    """Numeric per-question notes summed over the context's questions, and how many questions had each non-zero."""
    totals: dict = {}
    for generation in generations:
        for key, value in generation.notes.items():
            if isinstance(value, Number) and not isinstance(value, bool):
                totals[key] = totals.get(key, 0) + value
                if value:
                    totals[f"questions_with_{key}"] = totals.get(f"questions_with_{key}", 0) + 1
    return totals


def run_context(method: Method, context: Context, device) -> tuple[list[dict], dict]:
    """The rows of one context's questions and its cost row."""
    cost = {
        "method": method.name,
        "context_id": context.context_id,
        "benchmark": context.benchmark,
        "length": context.length,
        "context_num_tokens": context.num_tokens,
        "questions": len(context.questions),
    }
    with PeakMemory(device) as contextualize_peak, Stopwatch(device) as contextualize_clock:
        try:
            contextualized, error = method.contextualize(context), None
        except Exception as err:
            contextualized, error = None, _error(err)
    cost.update(
        contextualize_seconds=contextualize_clock.seconds,
        contextualize_peak_mb=contextualize_peak.megabytes,
        memory_kind=contextualize_peak.kind,
    )
    if contextualized is None:
        rows = [_row(method, context, question, "contextualize_failed", error=error) for question in context.questions]
        cost.update(
            error=error,
            failed_questions=len(rows),
            context_tokens=None,
            contextualize_flops=None,
            storage_floats=None,
            answer_seconds=None,
            answer_peak_mb=None,
            peak_memory_mb=None,
            per_query_seconds=None,
            per_query_flops=None,
            notes={},
        )
        return rows, cost

    with PeakMemory(device) as answer_peak, Stopwatch(device) as answer_clock:
        results = answer_questions(method, contextualized, context.questions) if context.questions else []
    rows, flops, answered = [], [], []
    for question, (generation, question_error) in zip(context.questions, results):
        if generation is None:
            rows.append(_row(method, context, question, "failed", error=question_error))
            continue
        query_flops = method.query_flops(contextualized, generation)
        flops.append(query_flops)
        answered.append(generation)
        outcome = "answered" if question.references else "no_references"
        rows.append(_row(method, context, question, outcome, generation, query_flops=query_flops))
    peaks = [peak for peak in (contextualize_peak.megabytes, answer_peak.megabytes) if peak is not None]
    questions = len(context.questions)
    cost.update(
        error=None,
        failed_questions=questions - len(answered),
        context_tokens=contextualized.context_tokens,
        contextualize_flops=contextualized.flops,
        storage_floats=contextualized.storage_floats,
        answer_seconds=answer_clock.seconds,
        answer_peak_mb=answer_peak.megabytes,
        peak_memory_mb=max(peaks) if peaks else None,
        per_query_seconds=answer_clock.seconds / questions if questions else None,
        per_query_flops=sum(flops) / len(flops) if flops else None,
        notes={**contextualized.notes, **_summed_notes(answered)},
    )
    return rows, cost


def run_method(method: Method, contexts: Sequence[Context], progress: bool = False) -> tuple[list[dict], list[dict]]:
    """(rows: one per question of every context, costs: one per context); see the module doc."""
    from tqdm.auto import tqdm

    device = next(method.base_model.parameters()).device
    rows, costs = [], []
    bar = tqdm(contexts, desc=method.name, unit="context", disable=not progress)
    for context in bar:
        context_rows, cost = run_context(method, context, device)
        rows += context_rows
        costs.append(cost)
        failed = sum(row["outcome"] in ("failed", "contextualize_failed") for row in rows)
        bar.set_postfix(questions=len(rows), failed=failed)
    return rows, costs
