"""`Resources`: what a job requests from the cluster and how it launches (GPUs, nodes, threads, memory, time limit).

A config section of its own, below every package that uses it (training, data preparation and evaluation jobs all
request resources); nothing here changes a result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ga.section import ConfigError, ConfigSection, setting


@dataclass
class Resources(ConfigSection):
    """What a training rule requests from the cluster and how it launches; nothing here changes the math."""

    gpus: int = setting(0, "GPUs per node; 0 = one CPU process", minimum=0, affects_output=False)
    nodes: int = setting(
        1, "nodes; > 1 launches srun + torchrun across nodes (needs gpus >= 1)", minimum=1, affects_output=False
    )
    threads: int = setting(2, "CPU cores per task", minimum=1, affects_output=False)
    mem_mb: int = setting(8000, "memory per node (MB)", minimum=1, affects_output=False)
    runtime: int = setting(
        60, "time limit (minutes); a job killed at its limit resumes when rerun", minimum=1, affects_output=False
    )

    def check(self) -> None:
        if self.nodes > 1 and self.gpus == 0:
            raise ConfigError(f"nodes: {self.nodes} nodes need gpus >= 1 (a CPU run is one process)")
