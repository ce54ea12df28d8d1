"""The generator starts as the authors' does: A1/A2/A3 with the variance of PyTorch's default nn.Linear weights,
B zero, RMSNorm gain one with epsilon 1e-6 (docs/method.md#generator)."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_models import tiny_adapter_config, tiny_base

import ga
from ga.generator import ContextProjection, ModuleGenerator

# Large enough that the sample std of each matrix is within a fraction of a percent of the true one
# (relative standard error 1 / sqrt(2 numel) ~ 0.1%), far from kaiming_normal_'s default, sqrt(6) ~ 2.45x larger.
D_IN, D_OUT, D_HIDDEN, INTER_SIZE = 768, 16, 1536, 512
STD_RTOL = 0.02
SCALE = 1.0
EPS = 1e-6


def fresh_generator(seed: int) -> ModuleGenerator:
    torch.manual_seed(seed)
    return ModuleGenerator(D_IN, D_OUT, D_HIDDEN, INTER_SIZE, SCALE, EPS)


@pytest.mark.parametrize("weight, fan_in", [("A1", D_IN), ("A2", D_HIDDEN), ("A3", D_HIDDEN)])
def test_projection_init_has_the_std_of_default_linear_weights(weight, fan_in):
    generator = fresh_generator(seed=0)
    values = {"A1": generator.A1, "A2": generator.context.A2, "A3": generator.context.A3}[weight].detach()
    expected_std = 1 / math.sqrt(3 * fan_in)  # kaiming, a = sqrt(5): gain sqrt(2 / (1 + 5)) over sqrt(fan_in)
    assert values.std().item() == pytest.approx(expected_std, rel=STD_RTOL)
    assert abs(values.mean().item()) < STD_RTOL * expected_std
    # the std nn.Linear's own init gives: the variance the authors' generator starts from
    linear = torch.nn.Linear(fan_in, INTER_SIZE, bias=False)
    assert values.std().item() == pytest.approx(linear.weight.detach().std().item(), rel=2 * STD_RTOL)


def test_b_starts_at_zero_and_the_norm_gain_at_one():
    generator = fresh_generator(seed=0)
    assert torch.equal(generator.B, torch.zeros(D_OUT, INTER_SIZE))  # the initial delta is exactly zero
    assert torch.equal(generator.context.norm_weight, torch.ones(D_HIDDEN))


def test_init_is_seeded():
    first, again, other = fresh_generator(seed=3), fresh_generator(seed=3), fresh_generator(seed=4)
    for name, param in first.named_parameters():
        assert torch.equal(param, again.get_parameter(name)), name
    for name in ("delta.A1", "context.A2", "context.A3"):
        assert not torch.equal(first.get_parameter(name), other.get_parameter(name)), name


def test_rms_norm_uses_the_configured_eps():
    """One token whose mean square equals eps: RMSNorm gives x / sqrt(ms + eps) = 1 / sqrt(2) per coordinate, so the
    state k v^T (A2 = A3 = identity) is 1/2 everywhere. F.rms_norm's default eps (float32's 1.19e-7) gives ~0.89."""
    width = 4
    projection = ContextProjection(width, width, norm_eps=EPS)
    with torch.no_grad():
        projection.A2.copy_(torch.eye(width))
        projection.A3.copy_(torch.eye(width))
    hidden = torch.full((1, 1, width), math.sqrt(EPS))
    state = projection(hidden, torch.ones(1, 1))
    torch.testing.assert_close(state, torch.full((1, width, width), 0.5), atol=1e-6, rtol=0)
    default_eps = torch.finfo(torch.float32).eps
    assert abs(state[0, 0, 0].item() - EPS / (EPS + default_eps)) > 0.3  # the test tells the two epsilons apart


def test_the_adapter_config_sets_the_eps_of_every_generator():
    assert ga.GenerativeAdapterConfig().norm_eps == EPS
    gam = ga.GenerativeAdapter(tiny_base("llama"), tiny_adapter_config())
    assert {g.context.norm_eps for g in gam.generators.values()} == {EPS}
    other_eps = 1e-5
    gam = ga.GenerativeAdapter(tiny_base("llama"), tiny_adapter_config(norm_eps=other_eps))
    assert {g.context.norm_eps for g in gam.generators.values()} == {other_eps}


@pytest.mark.parametrize("family", ["llama", "mistral", "qwen2"])
def test_base_kv_init_makes_the_context_state_the_sum_of_the_base_models_own_keys_and_values(family):
    """context_init base_kv: k_t, v_t are the first d_r channels of the layer's attention key and value of token t
    (pre-RoPE), so S = sum_t k_t v_t^T is computable from the base model alone."""
    base = tiny_base(family)
    config = tiny_adapter_config(context_init="base_kv")
    gam = ga.GenerativeAdapter(base, config)
    layer = base.model.layers[1]
    generator = gam.generators[gam.module_names[1].replace(".", "__")]
    hidden = torch.randn(2, 5, base.config.hidden_size)
    mask = torch.ones(2, 5)
    with torch.no_grad():
        normed = layer.input_layernorm(hidden)
        keys = layer.self_attn.k_proj(normed)[..., : config.inter_size]
        values = layer.self_attn.v_proj(normed)[..., : config.inter_size]
        expected = keys.transpose(1, 2) @ values
        state = generator.context(hidden, mask)
    torch.testing.assert_close(state, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(generator.B, torch.zeros_like(generator.B))  # the initial delta is still exactly zero


def test_base_kv_init_names_the_limit_when_inter_size_exceeds_the_key_channels():
    base = tiny_base("llama")
    kv_channels = base.model.layers[0].self_attn.k_proj.out_features
    with pytest.raises(ValueError, match=f"inter_size {kv_channels + 1} exceeds the {kv_channels} output channels"):
        ga.GenerativeAdapter(base, tiny_adapter_config(inter_size=kv_channels + 1, rank=8, context_init="base_kv"))
