"""Label conventions shared by data preparation, the model's loss and the training objectives."""

IGNORE_INDEX = -100
"""A label that carries no loss (PyTorch's cross-entropy default `ignore_index`): padding, context, prompts."""
