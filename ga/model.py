"""The Generative Adapter for Hugging Face decoder-only causal LMs: a generator (ga.generator) attached to a frozen
base model, and the API around it (training forward, encoding contexts into AdapterStates, serving them).
It runs past 400 lines on purpose: it is the one user-facing object, readable top to bottom (hook wiring, training
forward, encode/update, serving, persistence); the generator's modules and passes live in ga/generator.py.

Two forward hooks carry the generated delta into an unmodified base model: a pre-hook on each decoder layer reads
the layer input H, and a hook on each targeted linear adds dy. What the hooks do is decided by the *pass* that is
active: a WindowPass (training and context encoding) or a FixedAdapter (`adapted(state)`, `generate`).

A WindowPass stays active after a training forward returns, because non-reentrant gradient checkpointing
replays the decoder layers during backward and the replayed linear hooks must see the same normalized
states. A pre-hook on the decoder model (`model.model`, which checkpointing never replays) retires it when the
next fresh forward starts. Replays differ by Transformers version: recent versions checkpoint a layer's
`forward`, so the layer pre-hook runs only on fresh forwards; the 4.5x line checkpoints the layer's whole
`__call__`, so the replay runs the layer pre-hook again, which then rebuilds the same adapters (the replay must
recompute every tensor the first run saved for backward, the normalization's included).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ga.config import CHUNKINGS, GenerativeAdapterConfig
from ga.generator import (
    FixedAdapter,
    ModuleGenerator,
    WindowPass,
    merge_prefix_states,  # noqa: F401 (not used here; benchmarks/core.py imports it from ga.model)
    window_prefix,
)
from ga.labels import IGNORE_INDEX
from ga.normalize import lora_factors
from ga.state import AdapterState

GENERATOR_WEIGHTS = "generator.safetensors"
GENERATOR_CONFIG = "generator_config.json"


@dataclass
class GenerativeAdapterOutput:
    logits: torch.Tensor  # (B, S, L, vocab)
    loss: torch.Tensor | None = None  # mean over all labelled tokens
    window_losses: torch.Tensor | None = None  # (B, S) mean over each window's labelled tokens (0 if none)
    window_token_counts: torch.Tensor | None = None  # (B, S) labelled tokens per window


def decoder_layers(base_model: nn.Module) -> nn.ModuleList:
    inner = getattr(base_model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(
            f"{type(base_model).__name__}: expected decoder layers at `model.model.layers` "
            "(Llama, Mistral, Qwen2, SmolLM2 and similar Hugging Face causal LMs)"
        )
    return layers


def _module_key(name: str) -> str:
    return name.replace(".", "__")


class GenerativeAdapter(nn.Module):
    def __init__(self, base_model: nn.Module, config: GenerativeAdapterConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.base_model = base_model
        base_model.requires_grad_(False)
        d_hidden = base_model.config.hidden_size
        layers = decoder_layers(base_model)
        layers_prefix = self._layers_prefix(base_model, layers)
        # Reference path for tests and benchmarks/core.py: normalize every window's merged state rather than each
        # distinct prefix once. The outputs are the same; only the number of normalizations (SVDs) differs.
        self.normalize_each_window = False

        self.generators = nn.ModuleDict()
        self.module_names: list[str] = []  # full names of the adapted linear maps, in layer order
        self._layer_of: dict[str, int] = {}
        self._handles = []
        unmatched = set(config.target_modules)
        for layer_index, layer in enumerate(layers):
            layer_targets = []
            for local_name, module in layer.named_modules():
                target = next(
                    (t for t in config.target_modules if local_name == t or local_name.endswith("." + t)), None
                )
                if target is None:
                    continue
                if type(module) is not nn.Linear:
                    raise TypeError(f"target module {local_name!r} is {type(module).__name__}, not torch.nn.Linear")
                unmatched.discard(target)
                name = f"{layers_prefix}.{layer_index}.{local_name}"
                device = module.weight.device
                generator = ModuleGenerator(
                    module.in_features, module.out_features, d_hidden, config.inter_size, config.scale, config.norm_eps
                )
                if config.context_init == "base_kv":
                    generator.context.init_from_attention(layer)
                self.generators[_module_key(name)] = generator.to(device)
                self.module_names.append(name)
                self._layer_of[name] = layer_index
                self._handles.append(module.register_forward_hook(self._make_output_hook(name)))
                layer_targets.append(name)
            if layer_targets:
                self._handles.append(
                    layer.register_forward_pre_hook(self._make_layer_hook(layer_targets), with_kwargs=True)
                )
        if unmatched:
            available = sorted({n.rsplit(".", 1)[-1] for n, m in layers[0].named_modules() if isinstance(m, nn.Linear)})
            raise ValueError(
                f"target_modules {sorted(unmatched)} match no module in the decoder layers of "
                f"{type(base_model).__name__}; linear modules there: {available}"
            )
        self._handles.append(base_model.model.register_forward_pre_hook(self._retire_finished_pass))
        self._active: WindowPass | FixedAdapter | None = None
        self._merged_weights: dict[str, torch.Tensor] = {}

    @staticmethod
    def _layers_prefix(base_model: nn.Module, layers: nn.ModuleList) -> str:
        for name, module in base_model.named_modules():
            if module is layers:
                return name
        raise AssertionError("decoder layers not found among the base model's modules")

    # ------------------------------------------------------------------ hooks
    def _retire_finished_pass(self, decoder, args):
        # A fresh forward through the decoder: the previous training pass can no longer be replayed.
        if isinstance(self._active, WindowPass) and self._active.finished:
            self._active = None

    def _make_layer_hook(self, names: list[str]):
        def hook(layer, args, kwargs):
            active = self._active
            if isinstance(active, WindowPass):  # a fresh forward, or a checkpoint replay of the layer's __call__
                hidden = args[0] if args else kwargs["hidden_states"]
                for name in names:
                    active.build_adapters(name, self.generator_for(name), hidden, self.config)

        return hook

    def _make_output_hook(self, name: str):
        def hook(module, args, output):
            active = self._active
            if isinstance(active, FixedAdapter):
                return output + active.delta(name, args[0])
            if isinstance(active, WindowPass):
                return output + active.delta(name, self.generator_for(name), args[0])
            return None

        return hook

    # ------------------------------------------------------------------ training forward
    def generator_parameters(self):
        return self.generators.parameters()

    def generator_parameters_by_part(self) -> list[tuple[str, nn.Parameter]]:
        """(part, parameter) for every generator parameter in generator_parameters() order; part is one of
        ga.train.config.GENERATOR_PARTS (norm_weight, A2, A3, A1, B), for per-part optimizer settings."""
        return [(name.rsplit(".", 1)[-1], parameter) for name, parameter in self.generators.named_parameters()]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        adapter_prefix: torch.Tensor | None = None,
    ) -> GenerativeAdapterOutput:
        """One pass over (B, S, L) windows; window i is adapted by windows 0 .. adapter_prefix[i]-1."""
        logits, _ = self._window_forward(input_ids, attention_mask, adapter_prefix)
        if labels is None:
            return GenerativeAdapterOutput(logits=logits)
        return GenerativeAdapterOutput(logits=logits, **window_lm_loss(logits, labels))

    def _window_forward(self, input_ids, attention_mask=None, adapter_prefix=None, initial=None, collect=False):
        if input_ids.dim() != 3:
            raise ValueError(f"input_ids must be (batch, windows, window_len), got shape {tuple(input_ids.shape)}")
        batch, windows, length = input_ids.shape
        device = input_ids.device
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} != input_ids {tuple(input_ids.shape)}"
            )
        prefix = window_prefix(adapter_prefix, batch, windows, device)
        token_mask = attention_mask.reshape(batch * windows, length)
        # A window of padding only still goes through the model (batched examples with fewer windows);
        # give it one visible token so attention stays finite. It adds nothing to states or loss.
        empty = token_mask.sum(dim=1) == 0
        model_mask = token_mask.clone()
        model_mask[empty, 0] = 1
        active = WindowPass(
            batch,
            windows,
            token_mask,
            prefix,
            initial=initial,
            collect_totals=collect,
            normalize_each_window=self.normalize_each_window,
        )
        self._retire_pass()
        self._active = active
        try:
            out = self.base_model(
                input_ids=input_ids.reshape(batch * windows, length), attention_mask=model_mask, use_cache=False
            )
        except BaseException:
            self._active = None
            raise
        active.finished = True
        if not (torch.is_grad_enabled() and self.training):
            self._active = None  # nothing will replay this pass
        return out.logits.view(batch, windows, length, -1), active

    def _retire_pass(self) -> None:
        if isinstance(self._active, WindowPass):
            self._active = None
        elif self._active is not None:
            raise RuntimeError("a training or encoding forward cannot run inside `adapted(...)`")

    # ------------------------------------------------------------------ inference
    def empty_state(self) -> AdapterState:
        """The state of an empty context (zero sums and counts), on the generator's device: `update` adds chunks."""
        d_r = self.config.inter_size
        return AdapterState(
            sums={name: torch.zeros(d_r, d_r, device=self._device) for name in self.module_names},
            counts={name: 0 for name in self.module_names},
            config=self.config,
        )

    def _as_windows(self, input_ids, attention_mask, window: int, chunking: str):
        input_ids = input_ids if input_ids.dim() == 2 else input_ids.unsqueeze(0)
        if input_ids.shape[0] != 1:
            raise ValueError(f"encode takes one context (shape (T,) or (1, T)), got {tuple(input_ids.shape)}")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.view(1, -1)
        length = input_ids.shape[1]
        window = chunk_length(length, window, chunking)
        windows = max(1, -(-length // window))
        pad = windows * window - length
        ids = F.pad(input_ids, (0, pad), value=0).view(1, windows, window)
        mask = F.pad(attention_mask, (0, pad), value=0).view(1, windows, window)
        return ids, mask

    def _state_from_totals(self, totals: dict[str, torch.Tensor], num_tokens: int) -> AdapterState:
        return AdapterState(
            sums={name: totals[name][0] for name in self.module_names},
            counts={name: num_tokens for name in self.module_names},
            config=self.config,
        )

    @torch.no_grad()
    def encode(
        self,
        input_ids,
        attention_mask=None,
        strategy: str = "sequential",
        window: int | None = None,
        chunking: str | None = None,
    ) -> AdapterState:
        """Encode one context into an AdapterState: concat | sequential | parallel | streaming.

        sequential, parallel and streaming cut the context into chunks of at most `window` tokens (default
        `config.window`) as `chunking` says (default `config.chunking`; see `chunk_length`); concat takes it whole."""
        window = window or self.config.window
        chunking = chunking or self.config.chunking
        if chunking not in CHUNKINGS:
            raise ValueError(f"unknown chunking {chunking!r}; choose {' or '.join(CHUNKINGS)}")
        input_ids = torch.as_tensor(input_ids).to(self._device)
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask).to(self._device)
        if strategy == "concat":
            window = input_ids.shape[-1]
        ids, mask = self._as_windows(input_ids, attention_mask, window, chunking)
        num_tokens = int(mask.sum())
        if strategy in ("concat", "sequential", "parallel"):
            prefix = torch.zeros(ids.shape[1], dtype=torch.long) if strategy == "parallel" else None
            _, active = self._window_forward(ids, mask, prefix, collect=True)
            return self._state_from_totals(active.totals, num_tokens)
        if strategy == "streaming":
            state = self.empty_state()
            for index in range(ids.shape[1]):
                chunk_mask = mask[:, index]
                keep = chunk_mask[0].bool()
                state = self.update(state, ids[:, index][:, keep])
            return state
        raise ValueError(f"unknown encode strategy {strategy!r}; choose concat, sequential, parallel or streaming")

    @torch.no_grad()
    def update(self, state: AdapterState, input_ids) -> AdapterState:
        """Add one chunk, encoded under the adapter of `state` (the running state of everything before it)."""
        self.check_state(state)
        input_ids = torch.as_tensor(input_ids).to(self._device)
        input_ids = input_ids if input_ids.dim() == 2 else input_ids.unsqueeze(0)
        if input_ids.shape[1] == 0:
            return state
        ids = input_ids.view(1, 1, -1)
        initial = {name: s.to(self._device) for name, s in state.sums.items()}
        _, active = self._window_forward(ids, None, torch.zeros(1, dtype=torch.long), initial=initial, collect=True)
        tokens = ids.shape[-1]
        return AdapterState(
            sums={name: active.totals[name][0] for name in self.module_names},
            counts={name: state.counts[name] + tokens for name in self.module_names},
            config=self.config,
        )

    def check_state(self, state: AdapterState) -> None:
        if set(state.sums) != set(self.module_names):
            raise ValueError(
                f"AdapterState modules {sorted(state.sums)[:3]}... do not match this generator's {self.module_names[:3]}..."
            )
        d_r = self.config.inter_size
        for name, s in state.sums.items():
            if tuple(s.shape) != (d_r, d_r):
                raise ValueError(f"AdapterState[{name!r}] has shape {tuple(s.shape)}, expected ({d_r}, {d_r})")

    def generator_for(self, name: str) -> ModuleGenerator:
        return self.generators[_module_key(name)]

    @torch.no_grad()
    def lora(self, state: AdapterState) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """{module_name: (lora_A [r x d_in], lora_B [d_out x r])} of the state's delta W = s * lora_B @ lora_A,
        in float32 on the generator's device. Always computed from the state's sums with this generator's A1 and B
        (LoRA factors saved with a state are for serving without the generator)."""
        self.check_state(state)
        factors = {}
        for name, sums in state.sums.items():
            generator = self.generator_for(name)
            factors[name] = lora_factors(sums, generator.A1, generator.B, state.config)
        return factors

    @contextlib.contextmanager
    def adapted(self, state: AdapterState):
        """Inside, calls of `self.base_model(...)` / `.generate(...)` include the state's delta (unmerged)."""
        self._retire_pass()
        dtype = next(self.base_model.parameters()).dtype
        factors = {name: (a.to(dtype), b.to(dtype)) for name, (a, b) in self.lora(state).items()}
        self._active = FixedAdapter(factors, self.config.scale)
        try:
            yield self.base_model
        finally:
            self._active = None

    def generate(self, input_ids, state: AdapterState | None = None, **generate_kwargs):
        """`base_model.generate` with the state's delta (or the plain base model when state is None)."""
        if state is None:
            return self.base_model.generate(input_ids, **generate_kwargs)
        with self.adapted(state):
            return self.base_model.generate(input_ids, **generate_kwargs)

    @torch.no_grad()
    def merge(self, state: AdapterState) -> None:
        """Fold the state's delta into the base weights (fast per-query inference); `unmerge` restores them."""
        if self._merged_weights:
            raise RuntimeError("an adapter is already merged; call unmerge() first")
        modules = dict(self.base_model.named_modules())
        for name, (lora_a, lora_b) in self.lora(state).items():
            weight = modules[name].weight
            self._merged_weights[name] = weight.detach().clone()
            weight.copy_((weight.float() + self.config.scale * (lora_b @ lora_a)).to(weight.dtype))

    @torch.no_grad()
    def unmerge(self) -> None:
        modules = dict(self.base_model.named_modules())
        for name, original in self._merged_weights.items():
            modules[name].weight.copy_(original)
        self._merged_weights = {}

    @property
    def _device(self) -> torch.device:
        return next(self.generators.parameters()).device

    # ------------------------------------------------------------------ persistence
    def _base_fingerprint(self) -> dict:
        modules = dict(self.base_model.named_modules())
        return {
            "model_type": getattr(self.base_model.config, "model_type", None),
            "hidden_size": self.base_model.config.hidden_size,
            "num_layers": len(decoder_layers(self.base_model)),
            "modules": {n: [modules[n].in_features, modules[n].out_features] for n in self.module_names},
        }

    def save_pretrained(self, directory: str | Path, weights: dict[str, torch.Tensor] | None = None) -> None:
        """Generator weights (fp32 safetensors) + config with the base model's id, revision and shape fingerprint.

        weights: generator weights to write instead of the module's own values, keyed as `self.generators.state_dict()`
        (a trainer passes its fp32 master weights: the module may hold bf16 copies or ZeRO-3 partitions).
        Each file is replaced atomically; to publish the whole folder at once, build it inside `ga.io.atomic_dir`.
        """
        from ga.io import atomic_file, write_json

        own = self.generators.state_dict()
        if weights is None:
            weights = own
        elif set(weights) != set(own):
            raise ValueError(
                f"save_pretrained(weights=...): keys differ from the generator's: missing "
                f"{sorted(set(own) - set(weights))[:5]}, unexpected {sorted(set(weights) - set(own))[:5]}"
            )
        directory = Path(directory)
        config = self.config.to_dict()
        config["base_model_id"] = config["base_model_id"] or getattr(self.base_model.config, "_name_or_path", None)
        tensors = {k: v.detach().float().contiguous().cpu() for k, v in weights.items()}
        with atomic_file(directory / GENERATOR_WEIGHTS) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
        write_json({"adapter": config, "base": self._base_fingerprint()}, directory / GENERATOR_CONFIG, sort_keys=False)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, base_model: nn.Module | None = None, **load_kwargs
    ) -> GenerativeAdapter:
        from ga.io import read_json

        directory = Path(directory)
        config_path, weights_path = directory / GENERATOR_CONFIG, directory / GENERATOR_WEIGHTS
        if not config_path.is_file() or not weights_path.is_file():
            missing = config_path if not config_path.is_file() else weights_path
            raise FileNotFoundError(f"{missing}: does not exist (is {directory} a save_pretrained dir?)")
        payload = read_json(config_path)
        config = GenerativeAdapterConfig.from_dict(payload["adapter"])
        if base_model is None:
            from ga.base import load_base

            if not config.base_model_id:
                raise ValueError(f"{config_path}: no base_model_id recorded; pass base_model=")
            base_model, _ = load_base(config.base_model_id, revision=config.base_model_revision, **load_kwargs)
        gam = cls(base_model, config)
        expected, found = payload["base"], gam._base_fingerprint()
        for key in ("hidden_size", "num_layers", "modules"):
            if expected[key] != found[key]:
                raise ValueError(
                    f"{directory}: generator was trained for a base model with {key}={_short(expected[key])}, "
                    f"but the given base model has {key}={_short(found[key])} (base_model_id {config.base_model_id!r})"
                )
        gam.generators.load_state_dict(load_file(str(weights_path)), strict=True)
        return gam


def chunk_length(length: int, window: int, chunking: str) -> int:
    """Tokens per chunk when a context of `length` tokens is encoded in windows of at most `window` tokens.

    fixed: `window`; the last chunk holds the rest. balanced: as the authors chunk, the same number of chunks,
    ceil(length / window), each of ceil(length / chunks) tokens but the last, which holds the rest (so 1,025 tokens
    in windows of 1,024 become 513 + 512 rather than 1,024 + 1). An empty context is one empty chunk either way.
    """
    if chunking == "balanced" and length > 0:
        chunks = -(-length // window)
        return -(-length // chunks)
    return window


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) < 200 else text[:200] + "..."


def window_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Causal LM loss inside each window: position t predicts labels[t + 1] of the same window."""
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels shape {tuple(labels.shape)} != {tuple(logits.shape[:-1])}")
    # Every position is scored against the next label, the last one against none (ignored): slicing the last
    # position off the logits instead would copy all of them, (B, S, L, vocab), in forward and again in backward.
    next_labels = F.pad(labels[..., 1:], (0, 1), value=IGNORE_INDEX)
    token_losses = F.cross_entropy(
        logits.flatten(0, -2).float(), next_labels.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(labels.shape)[..., :-1]
    targets = labels[..., 1:]
    labelled = targets != IGNORE_INDEX
    counts = labelled.sum(dim=-1)
    sums = (token_losses * labelled).sum(dim=-1)
    window_losses = sums / counts.clamp_min(1)
    loss = sums.sum() / counts.sum().clamp_min(1)
    return {"loss": loss, "window_losses": window_losses, "window_token_counts": counts}
