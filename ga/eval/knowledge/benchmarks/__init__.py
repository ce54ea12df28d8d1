"""The knowledge-QA benchmark sources, behind one entry point (docs/data-sources.md#knowledge-qa-benchmarks).

- `squad`: SQuAD v1.1 from the hub (`datasets.load_dataset`, saved as Parquet in its native layout);
- `streamingqa`: CaMeLS's StreamingQA CSV, a file the user supplies;
- `entities`: the embedded twin, the held-out fictional entities of `sft_sources.entity_qa` (generated).

`benchmark_passages(name, sources)` gives a benchmark's evaluation passages, with their questions, in the source's
order (what `ga.eval.knowledge.contexts.group_contexts` groups); `benchmark_qa_pairs(name, sources)` gives its training
(question, answer) pairs for the QA fine-tuning baseline (never the evaluated questions); `benchmark_provenance`
says where the data came from, for the results. `BenchmarkSources` gathers what identifies every source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ga.data.hub import LoadSplit, load_hub_split
from ga.data.sft.embedded.config import EntityQaConfig
from ga.eval.contexts import Passage
from ga.eval.knowledge.benchmarks import entities, squad, streamingqa
from ga.eval.knowledge.config import BENCHMARKS, KnowledgeEvalConfig, SquadSourceConfig, StreamingQaSourceConfig
from ga.io import sha256_file
from ga.section import ConfigError


@dataclass(frozen=True)
class BenchmarkSources:
    """What identifies each benchmark's data: the source settings, and where SQuAD's download is cached."""

    squad: SquadSourceConfig
    streamingqa: StreamingQaSourceConfig
    entity_qa: EntityQaConfig
    cache_dir: Path
    """Downloads are cached under `cache_dir/squad/<revision>/`."""
    load_split: LoadSplit = load_hub_split
    """The hub call of SQuAD's download (tests stand in for the hub)."""

    @classmethod
    def from_config(
        cls, knowledge_eval: KnowledgeEvalConfig, entity_qa: EntityQaConfig, cache_dir: str | Path
    ) -> BenchmarkSources:
        return cls(knowledge_eval.squad, knowledge_eval.streamingqa, entity_qa, Path(cache_dir))


def _check_name(name: str) -> None:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}, expected one of {list(BENCHMARKS)}")


def _streamingqa_csv(sources: BenchmarkSources, key: str) -> Path:
    path = getattr(sources.streamingqa, key)
    if path is None:
        raise ConfigError(
            f"knowledge_eval.streamingqa.{key}: required (StreamingQA cannot be downloaded; give the "
            f"path of a CSV in CaMeLS's layout)"
        )
    return Path(path)


def benchmark_passages(name: str, sources: BenchmarkSources) -> list[Passage]:
    """The evaluation passages of benchmark `name` with their questions, in the source's order."""
    _check_name(name)
    if name == "squad":
        return squad.passages(squad.download(sources.squad, sources.cache_dir, sources.load_split))
    if name == "streamingqa":
        return streamingqa.passages(_streamingqa_csv(sources, "test_csv"))
    return entities.passages(sources.entity_qa)


def benchmark_qa_pairs(name: str, sources: BenchmarkSources) -> list[tuple[str, str]]:
    """The (question, answer) pairs that train benchmark `name`'s QA fine-tuning baseline."""
    _check_name(name)
    if name == "squad":
        return squad.qa_pairs(
            squad.download(sources.squad, sources.cache_dir, sources.load_split, split=sources.squad.train_split)
        )
    if name == "streamingqa":
        return streamingqa.qa_pairs(_streamingqa_csv(sources, "train_csv"))
    return entities.qa_pairs(sources.entity_qa)


def benchmark_provenance(name: str, sources: BenchmarkSources) -> dict:
    """Where benchmark `name`'s evaluation data comes from (JSON-ready), for the results."""
    _check_name(name)
    if name == "squad":
        return squad.provenance(sources.squad).to_dict()
    if name == "streamingqa":
        path = _streamingqa_csv(sources, "test_csv")
        return {
            "dataset": name,
            "file": str(path),
            "sha256": sha256_file(path) if path.is_file() else None,
            "licence": streamingqa.LICENCE,
        }
    return {"dataset": name, "generated_from": "sft_sources.entity_qa", "settings": sources.entity_qa.depends_on()}
