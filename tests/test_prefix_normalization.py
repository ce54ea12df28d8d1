"""One normalization per distinct prefix gives what one normalization per window gave: the same logits and losses
bit for bit, and the same gradients up to float32 summation order (docs/method.md#windows-and-prefix-sums)."""

from __future__ import annotations

import pytest
import torch
from tiny_models import VOCAB, tiny_adapter_config, tiny_gam

from ga.generator import DistinctPrefixes
from ga.normalize import normalize_state

NORMALIZATIONS = {
    "svd exact": dict(norm="svd", svd="exact"),
    "svd lowrank": dict(norm="svd", svd="lowrank"),
    "frobenius": dict(norm="frobenius"),
    "none": dict(norm="none"),
}
COMPLETION_WINDOWS = 4
LENGTH = 16
# The pretraining layout (docs/method.md#window-layout): n completion windows, then n reconstruction windows.
PRETRAIN_PREFIX = list(range(COMPLETION_WINDOWS)) + list(range(1, COMPLETION_WINDOWS + 1))
# The gathered normalized states send each distinct state the sum of its windows' gradients before the
# normalization's backward, where the per-window path sums after it: the same sum in another float32 order.
GRADIENT_RTOL = 1e-6


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The raw float32 bits, so that equality also tells -0.0 from 0.0."""
    return tensor.detach().float().contiguous().view(torch.int32)


def assert_bit_identical(a: torch.Tensor, b: torch.Tensor, what: str):
    assert torch.equal(bits(a), bits(b)), f"{what}: max abs diff {(a - b).abs().max().item():.3e}"


def training_step(gam, each_window: bool, ids, mask, prefix):
    gam.normalize_each_window = each_window
    gam.zero_grad(set_to_none=True)
    out = gam(ids, mask, labels=ids.masked_fill(mask == 0, -100), adapter_prefix=prefix)
    out.loss.backward()
    return out, {name: param.grad.clone() for name, param in gam.generators.named_parameters()}


def layouts():
    """(ids, mask, prefix): one unpadded pretraining example, and a padded batch of two different layouts."""
    generator = torch.Generator().manual_seed(0)
    windows = len(PRETRAIN_PREFIX)
    single = torch.randint(0, VOCAB, (1, windows, LENGTH), generator=generator)
    yield "single", single, torch.ones_like(single), torch.tensor(PRETRAIN_PREFIX)

    batch = torch.randint(0, VOCAB, (2, windows, LENGTH), generator=generator)
    mask = torch.ones_like(batch)
    mask[0, -1, LENGTH // 2 :] = 0  # a padded reconstruction span
    mask[1, 2, 10:] = 0  # a padded tail
    mask[1, -1] = 0  # a window of padding only
    prefix = torch.tensor([PRETRAIN_PREFIX, [0, 1, 1, 2, 0, 3, 3, 1]])
    yield "padded batch", batch, mask, prefix


@pytest.mark.parametrize("normalization", list(NORMALIZATIONS))
def test_distinct_prefixes_match_every_window(normalization):
    gam = tiny_gam("llama", **NORMALIZATIONS[normalization]).train()
    for layout, ids, mask, prefix in layouts():
        reference, reference_grads = training_step(gam, True, ids, mask, prefix)
        distinct, distinct_grads = training_step(gam, False, ids, mask, prefix)
        assert_bit_identical(distinct.logits, reference.logits, f"{layout}: logits")
        assert_bit_identical(distinct.loss, reference.loss, f"{layout}: loss")
        assert_bit_identical(distinct.window_losses, reference.window_losses, f"{layout}: window losses")
        for name, expected in reference_grads.items():
            error = (distinct_grads[name] - expected).norm() / expected.norm()
            assert error < GRADIENT_RTOL, f"{layout}: {name}: relative gradient error {error:.2e}"


@pytest.mark.parametrize("normalization", list(NORMALIZATIONS))
def test_encoding_and_updates_match_every_window(normalization):
    gam = tiny_gam("llama", **NORMALIZATIONS[normalization])
    context = torch.randint(0, VOCAB, (1, 3 * LENGTH + 5), generator=torch.Generator().manual_seed(1))
    states = {}
    for each_window in (True, False):
        gam.normalize_each_window = each_window
        encoded = gam.encode(context, window=LENGTH)
        states[each_window] = gam.update(encoded, context[:, :LENGTH])  # prefix 0 over earlier chunks: not empty
    for name, expected in states[True].sums.items():
        assert_bit_identical(states[False].sums[name], expected, name)


@pytest.mark.parametrize("normalization", list(NORMALIZATIONS))
def test_the_empty_state_normalizes_to_zero_bits(normalization):
    """Why the distinct path may put plain zeros where the per-window path normalized an empty state."""
    d_r = tiny_adapter_config().inter_size
    normalized = normalize_state(torch.zeros(3, d_r, d_r), tiny_adapter_config(**NORMALIZATIONS[normalization]))
    assert_bit_identical(normalized, torch.zeros_like(normalized), "normalized empty state")


def test_distinct_prefixes_of_the_pretraining_layout():
    completion = 8
    prefix = torch.tensor([list(range(completion)) + list(range(1, completion + 1))] * 2)
    distinct = DistinctPrefixes.of(prefix, empty_is_zero=True)
    assert distinct.has_empty
    assert distinct.batch_index.tolist() == [0] * completion + [1] * completion
    assert distinct.prefix.tolist() == list(range(1, completion + 1)) * 2
    # every window reads the row of its own (batch element, prefix); row 0 is the zero state
    row_batch = torch.cat([torch.tensor([-1]), distinct.batch_index])[distinct.window_rows].view(prefix.shape)
    row_prefix = torch.cat([torch.tensor([0]), distinct.prefix])[distinct.window_rows].view(prefix.shape)
    assert torch.equal(row_prefix, prefix)
    window_batch = torch.arange(2).unsqueeze(1).expand_as(prefix)
    assert torch.equal(row_batch, torch.where(prefix == 0, -1, window_batch))

    # with states of earlier chunks prefix 0 is not empty: it is normalized like every other prefix
    with_initial = DistinctPrefixes.of(prefix[:1], empty_is_zero=False)
    assert not with_initial.has_empty and with_initial.prefix.tolist() == list(range(completion + 1))


def test_one_normalization_per_distinct_prefix(monkeypatch):
    import ga.generator

    normalized_per_call = []

    def counting_normalize_state(state, config):
        normalized_per_call.append(state.shape[:-2].numel())
        return normalize_state(state, config)

    monkeypatch.setattr(ga.generator, "normalize_state", counting_normalize_state)
    gam = tiny_gam("llama").train()
    _, ids, mask, prefix = next(layouts())
    for each_window, per_module in ((True, len(PRETRAIN_PREFIX)), (False, COMPLETION_WINDOWS)):
        normalized_per_call.clear()
        training_step(gam, each_window, ids, mask, prefix)
        assert normalized_per_call == [per_module] * len(gam.module_names)
