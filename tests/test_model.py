"""Equivalence and invariants of the Generative Adapter core."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import torch
from tiny_models import FAMILIES, VOCAB, randomize_generator, tiny_adapter_config, tiny_base, tiny_gam
from torch.utils.checkpoint import checkpoint

import ga
from ga.model import chunk_length, decoder_layers
from ga.normalize import svd_normalize

ATOL = 1e-5
S, L = 4, 16


def random_windows(batch=1, windows=S, length=L, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (batch, windows, length), generator=generator)


def test_zero_B_gives_base_logits_exactly():
    base = tiny_base("llama")
    gam = ga.GenerativeAdapter(base, tiny_adapter_config())
    ids = random_windows()
    out = gam(ids)
    with torch.no_grad():
        reference = base(ids.view(S, L)).logits.view(1, S, L, -1)
    assert torch.equal(out.logits.detach(), reference)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_one_pass_equals_window_by_window(family):
    gam = tiny_gam(family)
    gam.eval()
    ids = random_windows()
    with torch.no_grad():
        one_pass = gam(ids).logits
        base_window0 = gam.base_model(ids[:, 0]).logits
    torch.testing.assert_close(one_pass[:, 0], base_window0, atol=ATOL, rtol=0)
    for i in range(1, S):
        state = gam.encode(ids[:, :i].reshape(1, -1), strategy="sequential", window=L)
        with gam.adapted(state), torch.no_grad():
            logits = gam.base_model(ids[:, i]).logits
        torch.testing.assert_close(one_pass[:, i], logits, atol=ATOL, rtol=0)
        # and the adapter really changes the model: otherwise this test proves nothing
        assert (logits - gam.base_model(ids[:, i]).logits).abs().max() > 1e-3


def test_batched_padded_pass_equals_single_examples():
    gam = tiny_gam("llama")
    ids = random_windows(batch=2)
    mask = torch.ones_like(ids)
    mask[1, 2, 10:] = 0  # padded tail
    mask[1, 3] = 0  # a window of padding only
    prefix = torch.tensor([[0, 1, 2, 3], [0, 1, 1, 2]])
    with torch.no_grad():
        batched = gam(ids, mask, adapter_prefix=prefix).logits
        for b in range(2):
            single = gam(ids[b : b + 1], mask[b : b + 1], adapter_prefix=prefix[b]).logits
            keep = mask[b].bool()
            torch.testing.assert_close(batched[b][keep], single[0][keep], atol=ATOL, rtol=0)
        # padding must not leak into states: changing padded token ids changes nothing real
        noisy = ids.clone()
        noisy[1, 2, 10:] = (noisy[1, 2, 10:] + 7) % VOCAB
        noisy[1, 3] = (noisy[1, 3] + 3) % VOCAB
        again = gam(noisy, mask, adapter_prefix=prefix).logits
    keep = mask.bool()
    torch.testing.assert_close(again[keep], batched[keep], atol=ATOL, rtol=0)
    assert torch.isfinite(batched).all()


def test_loss_is_shifted_inside_each_window():
    gam = tiny_gam("llama")
    ids = random_windows()
    labels = ids.clone()
    labels[:, 0] = -100
    out = gam(ids, labels=labels)
    logits = out.logits.detach()
    manual = torch.nn.functional.cross_entropy(logits[0, 1:, :-1].reshape(-1, VOCAB), ids[0, 1:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss.detach(), manual, atol=1e-5, rtol=1e-5)
    assert out.window_token_counts.tolist() == [[0, L - 1, L - 1, L - 1]]
    assert out.window_losses[0, 0] == 0


def test_window_loss_equals_the_loss_of_sliced_logits_bit_for_bit():
    """window_lm_loss scores the last position against an ignored label instead of slicing it off the logits."""
    from ga.labels import IGNORE_INDEX
    from ga.model import window_lm_loss

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, S, L, VOCAB, generator=generator)
    labels = torch.randint(0, VOCAB, (2, S, L), generator=generator)
    labels[:, 0] = IGNORE_INDEX
    labels[1, 2, : L // 2] = IGNORE_INDEX
    outputs, grads = [], []
    for sliced in (True, False):
        scored = logits.clone().requires_grad_(True)
        if sliced:
            targets = labels[..., 1:]
            token_losses = torch.nn.functional.cross_entropy(
                scored[..., :-1, :].flatten(0, -2), targets.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
            ).view(targets.shape)
            counts = (targets != IGNORE_INDEX).sum(dim=-1)
            sums = (token_losses * (targets != IGNORE_INDEX)).sum(dim=-1)
            out = {
                "loss": sums.sum() / counts.sum(),
                "window_losses": sums / counts.clamp_min(1),
                "window_token_counts": counts,
            }
        else:
            out = window_lm_loss(scored, labels)
        (out["loss"] + out["window_losses"].sum()).backward()
        outputs.append(out)
        grads.append(scored.grad)
    for key in outputs[0]:
        assert torch.equal(outputs[0][key], outputs[1][key]), key
    assert torch.equal(grads[0], grads[1])


def state_allclose(a: ga.AdapterState, b: ga.AdapterState, rtol=1e-4):
    assert a.counts == b.counts
    for name in a.sums:
        scale = a.sums[name].abs().max()
        torch.testing.assert_close(a.sums[name], b.sums[name], atol=rtol * scale, rtol=0)


def test_encode_strategies_agree():
    gam = tiny_gam("mistral")
    context = random_windows(windows=1, length=3 * L + 5).view(1, -1)
    sequential = gam.encode(context, strategy="sequential", window=L)
    streaming = gam.encode(context, strategy="streaming", window=L)
    state_allclose(sequential, streaming)
    by_update = gam.empty_state()
    for start in range(0, context.shape[1], L):
        by_update = gam.update(by_update, context[:, start : start + L])
    state_allclose(sequential, by_update)
    one_window = context[:, :L]
    state_allclose(gam.encode(one_window, strategy="concat"), gam.encode(one_window, strategy="sequential", window=L))
    assert sequential.num_tokens == context.shape[1]
    # parallel ignores earlier windows' adapters, so it differs from sequential once windows adapt each other
    parallel = gam.encode(context, strategy="parallel", window=L)
    name = gam.module_names[-1]
    assert not torch.allclose(parallel.sums[name], sequential.sums[name], rtol=1e-3)


STRATEGIES = ("concat", "sequential", "parallel", "streaming")


def assert_owns_only_itself(tensor: torch.Tensor, what: str):
    own_bytes = tensor.numel() * tensor.element_size()
    assert tensor.untyped_storage().nbytes() == own_bytes, (
        f"{what}: its storage holds {tensor.untyped_storage().nbytes()} bytes for a {own_bytes}-byte sum"
    )


def test_encoded_states_own_only_their_sums():
    """A state's sums must not be views into the per-window buffers of the encoding forward: at the paper's size
    (d_r 1,024, 32 layers, a 32K-token context in 32 windows) those would keep ~4.3 GB alive instead of ~134 MB."""
    windows, d_r = 4, 128  # d_r large beside the tiny model: a window buffer is 4x its sum
    gam = tiny_gam("llama", inter_size=d_r, rank=8)
    context = random_windows(windows=1, length=windows * L - 3).view(1, -1)
    states = {strategy: gam.encode(context, strategy=strategy, window=L) for strategy in STRATEGIES}
    states["update"] = gam.update(states["sequential"], context[:, :L])
    for strategy, state in states.items():
        for name, total in state.sums.items():
            assert total.shape == (d_r, d_r)
            assert_owns_only_itself(total, f"{strategy} {name}")
    state_allclose(states["sequential"], states["streaming"])


BALANCED_CHUNKS = [  # (context length T, window, chunk lengths): chunks of ceil(T / ceil(T / window)) tokens
    (10, 4, [4, 4, 2]),
    (9, 4, [3, 3, 3]),
    (5, 4, [3, 2]),
    (17, 8, [6, 6, 5]),
    (3, 4, [3]),
    (8, 4, [4, 4]),
    (1025, 1024, [513, 512]),
]
FIXED_CHUNKS = [(10, 4, [4, 4, 2]), (9, 4, [4, 4, 1]), (3, 4, [3]), (1025, 1024, [1024, 1])]


def chunk_lengths(length: int, window: int, chunking: str) -> list[int]:
    chunk = chunk_length(length, window, chunking)
    return [min(chunk, length - start) for start in range(0, length, chunk)]


@pytest.mark.parametrize("chunking, cases", [("balanced", BALANCED_CHUNKS), ("fixed", FIXED_CHUNKS)])
def test_chunk_lengths(chunking, cases):
    for length, window, expected in cases:
        assert chunk_lengths(length, window, chunking) == expected, (length, window)


def updated_chunk_by_chunk(gam, context, lengths: list[int], running: bool = True) -> ga.AdapterState:
    """Each chunk encoded by `update`: under the running state (sequential), or alone and summed (parallel)."""
    state, start = gam.empty_state(), 0
    for length in lengths:
        chunk = context[:, start : start + length]
        state = gam.update(state, chunk) if running else state + gam.update(gam.empty_state(), chunk)
        start += length
    assert start == context.shape[1]
    return state


@pytest.mark.parametrize("length, window, lengths", [(17, 8, [6, 6, 5]), (9, 4, [3, 3, 3])])
def test_balanced_encode_equals_updating_its_chunks(length, window, lengths):
    gam = tiny_gam("mistral", chunking="balanced")
    context = random_windows(windows=1, length=length, seed=7).view(1, -1)
    by_update = updated_chunk_by_chunk(gam, context, lengths)
    streaming = gam.encode(context, strategy="streaming", window=window)
    assert streaming.counts == by_update.counts
    for name in by_update.sums:  # the same updates in the same order
        assert torch.equal(streaming.sums[name], by_update.sums[name]), name
    state_allclose(gam.encode(context, strategy="sequential", window=window), by_update)
    parallel = gam.encode(context, strategy="parallel", window=window)
    state_allclose(parallel, updated_chunk_by_chunk(gam, context, lengths, running=False))
    # the config's chunking is encode's default, and it matters: fixed chunks give another state
    explicit = gam.encode(context, strategy="sequential", window=window, chunking="balanced")
    fixed = gam.encode(context, strategy="sequential", window=window, chunking="fixed")
    name = gam.module_names[-1]
    assert torch.equal(explicit.sums[name], gam.encode(context, window=window).sums[name])
    assert not torch.allclose(fixed.sums[name], explicit.sums[name], rtol=1e-3)


def test_encode_excludes_padding_from_state():
    gam = tiny_gam("llama")
    context = random_windows(windows=1, length=2 * L).view(1, -1)
    mask = torch.ones_like(context)
    mask[:, -5:] = 0
    padded = gam.encode(context, attention_mask=mask, window=L)
    trimmed = gam.encode(context[:, :-5], window=L)
    state_allclose(padded, trimmed)


def adapted_logits(gam, state, ids):
    with gam.adapted(state), torch.no_grad():
        return gam.base_model(ids).logits


def assert_window_matches_encoding(gam, ids, window_index, atol=ATOL) -> ga.AdapterState:
    """One-pass logits of window `window_index` == encoding the windows before it + running it adapted."""
    with torch.no_grad():
        one_pass = gam(ids).logits
    state = gam.encode(ids[:, :window_index].reshape(1, -1), window=ids.shape[-1])
    torch.testing.assert_close(
        one_pass[:, window_index], adapted_logits(gam, state, ids[:, window_index]), atol=atol, rtol=0
    )
    return state


def test_peft_export_and_merge_match_adapted(tmp_path):
    from peft import PeftModel

    gam = tiny_gam("llama")
    context = random_windows(windows=1, length=3 * L).view(1, -1)
    query = random_windows(windows=1, length=L, seed=5).view(1, -1)
    state = gam.encode(context, window=L)
    expected = adapted_logits(gam, state, query)

    ga.export_peft(gam, state, tmp_path / "peft")
    peft_model = PeftModel.from_pretrained(tiny_base("llama"), str(tmp_path / "peft")).eval()
    with torch.no_grad():
        torch.testing.assert_close(peft_model(query).logits, expected, atol=ATOL, rtol=0)

    original = {n: p.detach().clone() for n, p in gam.base_model.named_parameters()}
    gam.merge(state)
    with torch.no_grad():
        torch.testing.assert_close(gam.base_model(query).logits, expected, atol=ATOL, rtol=0)
    gam.unmerge()
    for name, param in gam.base_model.named_parameters():
        assert torch.equal(param, original[name]), name


def test_lora_factors_rank_and_unit_singular_values():
    gam = tiny_gam("llama")
    state = gam.encode(random_windows(windows=1, length=4 * L).view(1, -1), window=L)
    factors = gam.lora(state)
    r = gam.config.rank
    total = 0
    for name, (lora_a, lora_b) in factors.items():
        assert lora_a.shape[0] == r and lora_b.shape[1] == r
        assert torch.linalg.matrix_rank(lora_b @ lora_a) <= r
        total += lora_a.numel() + lora_b.numel()
        normalized = svd_normalize(state.sums[name].unsqueeze(0), r, gam.config.svd_rtol)[0]
        sigma = torch.linalg.svdvals(normalized)
        torch.testing.assert_close(sigma[:r], torch.ones(r), atol=1e-4, rtol=0)
        assert sigma[r:].abs().max() < 1e-4
    layers, d_in, d_out = 2, 64, 64
    assert total == layers * r * (d_in + d_out)


class CheckpointedCall(torch.nn.Module):
    """Runs a decoder layer's whole `__call__`, its hooks included, under non-reentrant checkpointing, as the
    Transformers 4.5x line does: a replay runs the layer's forward pre-hook again. (Installed Transformers
    checkpoints only the layer's `forward`, so the hooks stay outside the checkpoint.)"""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, *args, **kwargs):
        return checkpoint(self.layer, *args, use_reentrant=False, **kwargs)


CHECKPOINTING = [None, "transformers", "whole layer call"]


def backward_once(checkpointing: str | None) -> ga.GenerativeAdapter:
    """A tiny GA after one training forward + backward, with no checkpointing, the installed Transformers'
    non-reentrant checkpointing, or each decoder layer's whole __call__ checkpointed (the 4.5x style)."""
    gam = tiny_gam("llama")
    gam.train()
    if checkpointing == "transformers":
        gam.base_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    elif checkpointing == "whole layer call":
        layers = decoder_layers(gam.base_model)
        for index, layer in enumerate(layers):
            layers[index] = CheckpointedCall(layer)  # the GA's hooks stay on the wrapped layer and its modules
    ids = random_windows(batch=2)
    gam(ids, labels=ids).loss.backward()
    return gam


@pytest.mark.parametrize("checkpointing", CHECKPOINTING)
def test_only_generator_gets_gradients(checkpointing):
    gam = backward_once(checkpointing)
    for name, param in gam.base_model.named_parameters():
        assert param.grad is None, name
    grads = {n: p.grad for n, p in gam.generators.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert all(grads[n].abs().sum() > 0 for n in grads if n.endswith(("A1", "A2", "A3", "B")))


@pytest.mark.parametrize("checkpointing", CHECKPOINTING[1:])
def test_gradient_checkpointing_gives_the_same_gradients(checkpointing):
    expected = backward_once(None)
    gam = backward_once(checkpointing)
    for name, param in gam.generators.named_parameters():  # a replay recomputes the same ops: equal bit for bit
        assert torch.equal(param.grad, expected.get_parameter(f"generators.{name}").grad), name
    # the pass stays active for replays until the next fresh forward retires it
    assert gam._active is not None
    with torch.no_grad():
        gam.base_model(random_windows(windows=1).view(1, -1))
    assert gam._active is None


def test_degenerate_states_never_give_nonfinite_gradients():
    # A plain autograd SVD is infinite here: this guards that the test input really is degenerate.
    zero = torch.zeros(1, 8, 8, requires_grad=True)
    u, _, vh = torch.linalg.svd(zero)
    (u[..., :4] @ vh[..., :4, :]).sum().backward()
    assert not torch.isfinite(zero.grad).all()

    identity_like = torch.eye(8).unsqueeze(0).repeat(2, 1, 1)
    identity_like[1, 3, 3] = 1 + 1e-9  # near-equal values across the truncation boundary
    few_tokens = torch.randn(2, 8)
    cases = torch.cat([torch.zeros(1, 8, 8), identity_like, (few_tokens.T @ few_tokens).unsqueeze(0)])
    cases.requires_grad_(True)
    normalized = svd_normalize(cases, 4, 1e-6)
    (normalized * torch.randn_like(normalized)).sum().backward()
    assert torch.isfinite(normalized).all() and torch.isfinite(cases.grad).all()

    # end to end: windows without adapter, windows of 3 tokens (< d_r repeated zeros), repeated windows
    gam = tiny_gam("llama", inter_size=32, rank=8)
    gam.train()
    ids = random_windows(batch=2, windows=6, length=8)
    ids[:, 1] = ids[:, 0]
    mask = torch.ones_like(ids)
    mask[:, :, 3:] = 0
    prefix = torch.tensor([0, 1, 0, 2, 3, 6])
    out = gam(ids, mask, labels=ids.masked_fill(mask == 0, -100), adapter_prefix=prefix)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in gam.generator_parameters())


def test_save_load_roundtrip(tmp_path):
    gam = tiny_gam("qwen2")
    gam.save_pretrained(tmp_path / "gen")
    loaded = ga.GenerativeAdapter.from_pretrained(tmp_path / "gen", base_model=tiny_base("qwen2"))
    context = random_windows(windows=1, length=2 * L).view(1, -1)
    a, b = gam.encode(context, window=L), loaded.encode(context, window=L)
    for name in a.sums:
        assert torch.equal(a.sums[name], b.sums[name])

    a.save(tmp_path / "state.safetensors")
    restored = ga.AdapterState.load(tmp_path / "state.safetensors")
    assert restored.counts == a.counts and restored.config == a.config
    for name in a.sums:
        assert torch.equal(restored.sums[name], a.sums[name])
    query = random_windows(windows=1, length=L, seed=9).view(1, -1)
    assert torch.equal(adapted_logits(gam, a, query), adapted_logits(loaded, restored, query))


def test_adapter_state_is_a_plain_value():
    assert [f.name for f in dataclasses.fields(ga.AdapterState)] == ["sums", "counts", "config", "lora", "origin"]
    state = tiny_gam("llama").encode(random_windows(windows=1, length=L).view(1, -1))
    assert not hasattr(state, "generator") and state.lora is None and state.origin is None
    # ga.state needs nothing of the model: importing it does not import ga.model
    check = "import sys, ga.state; assert 'ga.model' not in sys.modules, 'ga.state imports ga.model'"
    subprocess.run([sys.executable, "-c", check], check=True)


def assert_same_factors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name][0], b[name][0]) and torch.equal(a[name][1], b[name][1]), name


def test_state_file_round_trip_with_and_without_lora_factors(tmp_path):
    from safetensors import safe_open

    gam = tiny_gam("llama")
    state = gam.encode(random_windows(windows=1, length=2 * L).view(1, -1), window=L)
    factors = gam.lora(state)

    state.save(tmp_path / "sums_only.safetensors")
    state.save(tmp_path / "with_lora.safetensors", lora=factors)
    for file in ("sums_only", "with_lora"):
        with safe_open(str(tmp_path / f"{file}.safetensors"), framework="pt") as handle:  # safetensors: no pickle
            assert handle.metadata()["format"] == "ga.AdapterState/1"
        loaded = ga.AdapterState.load(tmp_path / f"{file}.safetensors")
        assert loaded.counts == state.counts and loaded.config == state.config
        for name in state.sums:
            assert torch.equal(loaded.sums[name], state.sums[name])
    assert ga.AdapterState.load(tmp_path / "sums_only.safetensors").lora is None

    with_lora = ga.AdapterState.load(tmp_path / "with_lora.safetensors")
    assert_same_factors(with_lora.lora, factors)
    with_lora.save(tmp_path / "resaved.safetensors")  # a loaded state keeps its factors when saved again
    assert_same_factors(ga.AdapterState.load(tmp_path / "resaved.safetensors").lora, factors)
    assert (with_lora + with_lora).lora is None  # the factors of one state do not describe a sum
    with pytest.raises(ValueError, match="do not match"):
        state.save(tmp_path / "bad.safetensors", lora={"nope": factors[gam.module_names[0]]})


def test_state_with_saved_factors_serves_like_the_generator(tmp_path):
    from safetensors.torch import load_file

    gam = tiny_gam("llama")
    state = gam.encode(random_windows(windows=1, length=2 * L).view(1, -1), window=L)
    state.save(tmp_path / "state.safetensors", lora=gam.lora(state))
    loaded = ga.AdapterState.load(tmp_path / "state.safetensors")
    query = random_windows(windows=1, length=L, seed=9).view(1, -1)
    assert torch.equal(adapted_logits(gam, loaded, query), adapted_logits(gam, state, query))
    ga.export_peft(gam, state, tmp_path / "from_generator")
    ga.export_peft(gam, loaded, tmp_path / "from_file")
    exported = [load_file(str(tmp_path / d / "adapter_model.safetensors")) for d in ("from_generator", "from_file")]
    assert exported[0].keys() == exported[1].keys()
    assert all(torch.equal(exported[0][k], exported[1][k]) for k in exported[0])
    # with a generator given, the delta is the generator's own, not the factors saved in the file
    loaded.lora = {name: (torch.zeros_like(a), torch.zeros_like(b)) for name, (a, b) in loaded.lora.items()}
    assert_same_factors(gam.lora(loaded), gam.lora(state))
    assert torch.equal(adapted_logits(gam, loaded, query), adapted_logits(gam, state, query))


def test_empty_state_then_update_equals_encode_of_one_window():
    gam = tiny_gam("llama")
    empty = gam.empty_state()
    assert empty.module_names == gam.module_names and empty.num_tokens == 0
    assert all(count == 0 for count in empty.counts.values())
    assert all(torch.equal(s, torch.zeros(gam.config.inter_size, gam.config.inter_size)) for s in empty.sums.values())
    window = random_windows(windows=1, length=gam.config.window).view(1, -1)
    updated, encoded = gam.update(empty, window), gam.encode(window)
    assert updated.counts == encoded.counts
    for name in encoded.sums:
        assert torch.equal(updated.sums[name], encoded.sums[name]), name


def test_loading_into_mismatched_base_fails(tmp_path):
    gam = tiny_gam("llama")
    gam.save_pretrained(tmp_path / "gen")
    from tiny_models import COMMON
    from transformers import LlamaConfig, LlamaForCausalLM

    wider = LlamaForCausalLM(LlamaConfig(**{**COMMON, "hidden_size": 128}))
    with pytest.raises(ValueError, match="hidden_size"):
        ga.GenerativeAdapter.from_pretrained(tmp_path / "gen", base_model=wider)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(rank=64, inter_size=32), "exceeds inter_size"),
        (dict(norm="l2"), "norm: 'l2' is not one of"),
        (dict(svd="qr"), "svd: 'qr' is not one of"),
        (dict(target_modules=[]), "target_modules"),
        (dict(window=0), "window"),
        (dict(chunking="even"), "chunking: 'even' is not one of"),
        (dict(norm_eps=0), "norm_eps"),
    ],
)
def test_invalid_configs(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_adapter_config(**overrides)


def test_unknown_target_module_fails_with_available_names():
    with pytest.raises(ValueError, match=r"\['nope_proj'\].*o_proj"):
        ga.GenerativeAdapter(tiny_base("llama"), tiny_adapter_config(target_modules=["nope_proj"]))
    with pytest.raises(TypeError, match="not torch.nn.Linear"):
        ga.GenerativeAdapter(tiny_base("llama"), tiny_adapter_config(target_modules=["input_layernorm"]))


def test_down_proj_and_multiple_targets():
    gam = tiny_gam("llama", target_modules=["o_proj", "mlp.down_proj"])
    assert len(gam.module_names) == 4
    assert_window_matches_encoding(gam, random_windows(), 2)


def test_bfloat16_forward_is_finite_and_close_to_float32():
    gam32 = tiny_gam("llama")
    gam16 = randomize_generator(ga.GenerativeAdapter(tiny_base("llama", dtype=torch.bfloat16), tiny_adapter_config()))
    ids = random_windows()
    with torch.no_grad():
        a, b = gam32(ids, labels=ids), gam16(ids, labels=ids)
    assert torch.isfinite(b.logits).all()
    assert abs(a.loss - b.loss) < 0.05 * a.loss


@pytest.mark.parametrize("norm", ["frobenius", "none"])
def test_other_norms_match_between_one_pass_and_sequential(norm):
    assert_window_matches_encoding(tiny_gam("llama", norm=norm), random_windows(), 3)


def test_lowrank_svd_is_seeded_and_matches_one_pass():
    gam = tiny_gam("llama", svd="lowrank")
    ids = random_windows()
    first = gam.lora(assert_window_matches_encoding(gam, ids, 3, atol=1e-4))
    second = gam.lora(gam.encode(ids[:, :3].reshape(1, -1), window=L))
    for name in first:
        assert torch.equal(first[name][0], second[name][0])


def test_generate_uses_the_adapter():
    gam = tiny_gam("llama")
    context = random_windows(windows=1, length=2 * L).view(1, -1)
    state = gam.encode(context, window=L)
    prompt = random_windows(windows=1, length=4, seed=3).view(1, -1)
    kwargs = dict(max_new_tokens=6, do_sample=False, pad_token_id=0)
    adapted = gam.generate(prompt, state=state, **kwargs)
    with gam.adapted(state):
        inside = gam.base_model.generate(prompt, **kwargs)
    assert torch.equal(adapted, inside)
    # greedy decoding with the cache equals a no-cache recomputation under the same adapter
    sequence = prompt
    for _ in range(6):
        nxt = adapted_logits(gam, state, sequence)[:, -1].argmax(-1, keepdim=True)
        sequence = torch.cat([sequence, nxt], dim=1)
    assert torch.equal(sequence, adapted)


@pytest.mark.slow
def test_on_the_embedded_smollm2(embedded_dir):
    """The same one-pass == window-by-window equivalence on the real 30-layer SmolLM2-135M-Instruct."""
    from ga.base import load_base

    base, tokenizer = load_base(embedded_dir)
    config = ga.GenerativeAdapterConfig(inter_size=64, rank=16, alpha=64, window=32)
    gam = randomize_generator(ga.GenerativeAdapter(base.eval(), config), std=0.02)
    text = "The Generative Adapter maps a context to a low-rank adapter in one forward pass. " * 8
    ids = tokenizer(text, return_tensors="pt").input_ids[:, : 3 * 32]
    windows = ids.view(1, 3, 32)
    with torch.no_grad():
        one_pass = gam(windows).logits
    state = gam.encode(ids[:, :64])
    assert len(state.sums) == 30 and state.num_tokens == 64
    torch.testing.assert_close(one_pass[:, 2], adapted_logits(gam, state, windows[:, 2]), atol=1e-4, rtol=0)
    assert sum(a.numel() + b.numel() for a, b in gam.lora(state).values()) == 30 * 16 * (576 + 576)
