"""Helpers for tests that need real services (a one-node SLURM cluster)."""
