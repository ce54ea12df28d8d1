"""Fixtures of the tests and benchmarks: real services (a one-node SLURM cluster, a headless browser) and synthetic
pretraining data (train_data)."""
