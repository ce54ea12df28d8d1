"""Training the generator (docs/method.md#training): one DeepSpeed loop (loop.py) with pluggable objectives (objective.py)."""
from ga.train.config import FinetuneConfig, PretrainConfig, TrainConfig
from ga.train.objective import Objective, PretrainObjective

__all__ = ["TrainConfig", "PretrainConfig", "FinetuneConfig", "Objective", "PretrainObjective"]
