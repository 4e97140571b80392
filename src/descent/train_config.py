"""`TrainConfig`: everything that defines a `descent train` run, and `ConfigError`.

Every field is a command-line flag (`descent.cli`); `validate()` refuses, with one line naming
the field, any value that cannot work -- including values of the wrong type read back from a
damaged or crafted checkpoint when resuming.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from . import backend
from .models.gpt import PRESETS, GPTConfig
from .models.grok import GROK_PRESETS, GrokConfig


class ConfigError(ValueError):
    """A training run cannot start: bad setting, missing data, unwritable output folder."""


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults are the 'baby-gpt' preset.

    Attributes (by group):
        out_dir, data, resume, seed, device: where to write; the corpus ('python' = the Python
            standard library's source on this machine, 'shakespeare', or a path to a text file;
            None = 'python'); continue from `out_dir`'s checkpoint; the seed; 'cpu' or 'cuda'.
        n_layer, n_head, n_embd, block_size, dropout, bias: the GPT's shape (`GPTConfig`).
        rope, qk_norm, relu2, logit_softcap, zero_init_proj, tie_weights: the GPT's speedrun
            options (`GPTConfig`; off = nanoGPT's model; docs/speedrun.md).
        batch_size, gradient_accumulation_steps, max_iters: sequences per micro-batch (the
            global batch: under MPI each of N ranks takes batch_size / N of them), micro-batches
            per step, and the number of optimizer steps.
        learning_rate, min_lr, warmup_iters, lr_decay_iters, decay_lr: linear warm-up to
            learning_rate over warmup_iters steps, then cosine decay to min_lr at lr_decay_iters
            (constant learning_rate when decay_lr is False).
        weight_decay, beta1, beta2, grad_clip: AdamW's settings; gradient clipping by global
            norm (0 disables it).
        optimizer, muon_lr, muon_momentum, muon_weight_decay: 'adamw' (nanoGPT) or 'muon'
            (Muon for the blocks' matrices with these settings, AdamW for the rest; Muon's lr
            follows the same schedule, scaled by muon_lr / learning_rate).
        eval_interval, eval_iters: estimate train/val loss every eval_interval steps on
            eval_iters batches per split.
        log_interval: write a step record to metrics.jsonl every log_interval steps.
        checkpoint_interval: save every this many steps (None: at every evaluation); a final
            checkpoint is always written.
        sample_tokens: length of the text sample after training (0: none).
        progress: show a tqdm progress bar.
        compile: run each micro-batch's forward and backward through `descent.compile`
            (recorded on the first two steps, replayed after; single process only).
    """

    # I/O and run identity
    out_dir: str = "out"
    data: str | None = None
    resume: bool = False
    seed: int = 1337
    device: str = "cpu"
    # model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = False
    rope: bool = False
    qk_norm: bool = False
    relu2: bool = False
    logit_softcap: float = 0.0
    zero_init_proj: bool = False
    tie_weights: bool = True
    # optimisation
    batch_size: int = 12
    gradient_accumulation_steps: int = 1
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    decay_lr: bool = True
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    optimizer: str = "adamw"
    muon_lr: float = 0.02
    muon_momentum: float = 0.95
    muon_weight_decay: float = 0.0
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 1
    checkpoint_interval: int | None = None
    sample_tokens: int = 200
    progress: bool = True
    compile: bool = False
    # the model family: 'gpt' (nanoGPT) or 'grok' (descent.models.Grok, Grok-1's MoE shape;
    # docs/grok.md) and the tokens: 'char' or 'subword' (byte-level BPE of vocab_size tokens)
    model: str = "gpt"
    tokenizer: str = "char"
    vocab_size: int = 1024
    n_kv_head: int = 2
    head_dim: int = 32
    widening_factor: float = 4.0
    num_experts: int = 4
    num_selected_experts: int = 2
    attn_logit_cap: float = 30.0
    embedding_multiplier_scale: float = 1.0
    output_multiplier_scale: float = 1.0
    aux_loss_weight: float = 0.01
    router_z_loss_weight: float = 0.001
    preset: str | None = field(default=None)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """A config from a `descent.models.PRESETS` entry, with fields overridden by keyword."""
        presets = {**PRESETS, **GROK_PRESETS}
        if name not in presets:
            raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(presets)}")
        values = dict(presets[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict({**values, "preset": name})

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s) {unknown}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def model_config(self, vocab_size: int) -> GPTConfig | GrokConfig:
        if self.model == "grok":
            return GrokConfig(
                vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                n_head=self.n_head, n_kv_head=self.n_kv_head, head_dim=self.head_dim,
                n_embd=self.n_embd, widening_factor=self.widening_factor,
                num_experts=self.num_experts, num_selected_experts=self.num_selected_experts,
                attn_logit_cap=self.attn_logit_cap,
                embedding_multiplier_scale=self.embedding_multiplier_scale,
                output_multiplier_scale=self.output_multiplier_scale, dropout=self.dropout,
            )  # fmt: skip
        return GPTConfig(
            vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
            n_head=self.n_head, n_embd=self.n_embd, dropout=self.dropout, bias=self.bias,
            rope=self.rope, qk_norm=self.qk_norm, relu2=self.relu2,
            logit_softcap=self.logit_softcap, zero_init_proj=self.zero_init_proj,
            tie_weights=self.tie_weights,
        )  # fmt: skip

    def check_types(self) -> None:
        """Raise ConfigError for a field whose value is not of its declared type.

        A config read back from a checkpoint (`--resume`) may be crafted or damaged: '4' for
        n_layer or 1.5 for max_iters must be refused here, not fail deep inside the model.
        """
        kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
        for f in fields(self):
            value = getattr(self, f.name)
            names = [t.strip() for t in str(f.type).split("|")]
            if value is None and "None" in names:
                continue
            ok = kinds[names[0]]
            if not isinstance(value, ok) or (isinstance(value, bool) and bool not in ok):
                raise ConfigError(
                    f"{f.name} must be {'a' if names[0] != 'int' else 'an'} {names[0]}"
                    f"{' or None' if 'None' in names else ''}, got {value!r} "
                    f"({type(value).__name__})"
                )

    def validate(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        self.check_types()
        positive = [
            "n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters",
            "gradient_accumulation_steps", "eval_interval", "eval_iters", "log_interval",
        ]  # fmt: skip
        for name in positive:
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("learning_rate", "min_lr", "weight_decay", "grad_clip"):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.optimizer not in ("adamw", "muon"):
            raise ConfigError(f"optimizer must be 'adamw' or 'muon', got {self.optimizer!r}")
        for name in ("muon_lr", "muon_weight_decay", "muon_momentum", "logit_softcap"):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                raise ConfigError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if self.rope and (self.n_embd // self.n_head) % 2:
            raise ConfigError(
                f"rope needs an even head width, got n_embd // n_head = "
                f"{self.n_embd // self.n_head}; change n_embd or n_head"
            )
        if self.warmup_iters < 0 or self.sample_tokens < 0:
            raise ConfigError("warmup_iters and sample_tokens must be >= 0")
        if self.lr_decay_iters <= 0:
            raise ConfigError(
                f"lr_decay_iters must be a positive integer (the step where the cosine decay "
                f"reaches min_lr), got {self.lr_decay_iters}"
            )
        if self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed}")
        if self.data is not None and not self.data.strip():
            raise ConfigError(
                "data is empty; pass a text file, 'shakespeare' or 'python' (or leave the flag "
                "out for 'python')"
            )
        if self.checkpoint_interval is not None and self.checkpoint_interval <= 0:
            raise ConfigError(
                f"checkpoint_interval must be positive, got {self.checkpoint_interval}"
            )
        if self.model not in ("gpt", "grok"):
            raise ConfigError(f"model must be 'gpt' or 'grok', got {self.model!r}")
        if self.tokenizer not in ("char", "subword"):
            raise ConfigError(f"tokenizer must be 'char' or 'subword', got {self.tokenizer!r}")
        if self.tokenizer == "subword" and self.vocab_size < 257:
            raise ConfigError(f"vocab_size must be >= 257 for subword tokens (256 bytes + "
                              f"merges), got {self.vocab_size}")  # fmt: skip
        if self.model == "grok":
            try:
                self.model_config(max(self.vocab_size, 1))
            except ValueError as e:
                raise ConfigError(str(e)) from None
            for name in ("aux_loss_weight", "router_z_loss_weight", "attn_logit_cap"):
                if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                    raise ConfigError(f"{name} must be a finite number >= 0, got "
                                      f"{getattr(self, name)}")  # fmt: skip
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.device == "cuda" and not backend.cuda_available():
            raise ConfigError(
                "--device cuda: no CUDA GPU is usable here (CuPy missing or no device); "
                "install the 'gpu' extra on a machine with a GPU, or use --device cpu"
            )
