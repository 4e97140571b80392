"""The training loop behind `descent train`: a character-level GPT trained the nanoGPT way.

Readable from top to bottom, like nanoGPT's train.py, but as a library object (no globals):

    config = TrainConfig.from_preset("baby-gpt", max_iters=500, out_dir="out/run")
    trainer = train(config)            # or Trainer(config).train()
    print(trainer.sample("def ", 200))

One iteration (one "step", numbered from 1):

    lr = warmup_cosine_lr(step)                       learning rate is a pure function of step
    x, y = batch from the train split                 random windows, a seeded generator
    logits, loss = model(x, y); loss.backward()       (repeated gradient_accumulation_steps times)
    grad_norm = clip_grad_norm_(params, grad_clip)
    optimizer.step()                                  AdamW, decay on 2-D tensors only
    callbacks' on_step(...); optimizer.zero_grad()
    every eval_interval steps: estimate train/val loss on eval_iters batches; save a checkpoint

Exact resume: a checkpoint holds the weights, the optimizer state, the step, the states of the
three random generators (training batches, evaluation batches, dropout) and the tokenizer, so a
run stopped after a checkpoint -- even by SIGKILL -- and resumed produces the very same losses as
a run that never stopped.

Output folder (`config.out_dir`), written only by the main process (`Trainer.is_main`):
    config.json        the TrainConfig of the run
    metrics.jsonl      one JSON object per line (see `Trainer._log` and docs/training.md)
    ckpt.safetensors   the latest checkpoint (written atomically by descent.io)
    .descent.lock      held by the running process: a second run into the folder is refused
Every file is written as a temporary file renamed over its name (never through a planted link),
and everything that can fail is checked before the model is built (see descent.runfolder and
descent.preflight). The configuration lives in descent.train_config, sampling in
descent.sampling; this module re-exports their public names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

import descent

from . import preflight, runfolder
from .models.gpt import GPT
from .models.grok import Grok, GrokConfig
from .runfolder import CHECKPOINT_NAME, CONFIG_NAME, METRICS_NAME
from .sampling import generate_text, load_checkpoint
from .train_config import ConfigError, TrainConfig

# ---------------------------------------------------------------------------------------------
# Data


def load_text_data(
    data: str | None, block_size: int, tokenizer=None, *, rank: int = 0, world_size: int = 1,
    tokenizer_kind: str = "char", vocab_size: int = 1024,
):  # fmt: skip
    """Read the corpus, build (or reuse) its character tokenizer and the train/val token stream.

    Args:
        data: 'python' (default when None), 'shakespeare', or a path to a UTF-8 text file.
        block_size: the context length the stream must serve.
        tokenizer: a tokenizer to reuse (resuming); the corpus is built into a new one if None.
        rank, world_size: data-parallel sharding of the batches (see `TokenStream`).

    Returns:
        (tokenizer, stream): a `descent.data.CharTokenizer` and a `descent.data.TokenStream`.

    Raises:
        ConfigError: the file is missing or unreadable, too short for block_size, or has
            characters the given tokenizer does not know.
    """
    from . import data as ddata

    name = "python" if data is None else data
    if name not in ("python", "stdlib", "default", "shakespeare"):
        _check_data_file(name)
    try:
        text = ddata.load_corpus(name)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"cannot read data {name!r}: {e}") from e
    if tokenizer is None and tokenizer_kind == "subword":
        # Byte-level BPE learned on the first 90% of the text: the validation split (the last
        # 10% of the tokens) takes no part in choosing the merges.
        tokenizer = ddata.SubwordTokenizer.train(text[: int(len(text) * 0.9)], vocab_size)
    if tokenizer is None:
        try:
            tokenizer = ddata.CharTokenizer.from_text(text)
        except ValueError as e:
            raise ConfigError(f"data {name!r}: {e}") from e
    try:
        ids = tokenizer.encode_array(text)
    except (KeyError, ValueError) as e:
        raise ConfigError(
            f"data {name!r} has characters the checkpoint's tokenizer does not know ({e}); "
            "resume with the same --data as the original run"
        ) from e
    stream = ddata.TokenStream(
        ids, tokenizer=tokenizer, val_fraction=0.1, rank=rank, world_size=world_size
    )
    for split in ("train", "val"):
        n = len(stream.splits[split])
        if n <= block_size + 1:
            raise ConfigError(
                f"data {name!r}: the {split} split has {n} tokens, too few for "
                f"block_size={block_size}; use more text or a smaller --block-size"
            )
    return tokenizer, stream


def _check_data_file(name: str) -> None:
    """Say what `--data` names when it is not a readable text file."""
    import stat

    if not name.strip():
        raise ConfigError("--data is empty; pass a text file, 'shakespeare' or 'python'")
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise ConfigError(
            f"data file {name!r} not found; pass a text file, 'shakespeare' or 'python'"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot read data {name!r}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"data {name!r} is a directory; pass a text file inside it")
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise ConfigError(f"data {name!r} is {kind}, not a regular file; pass a text file")
    if st.st_size == 0:
        raise ConfigError(f"data file {name!r} is empty; pass a text file with some text")


# ---------------------------------------------------------------------------------------------
# The trainer


def _no_sync(model):
    """The model's `no_sync()` under DistributedDataParallel, else a no-op context."""
    no_sync = getattr(model, "no_sync", None)
    return no_sync() if no_sync is not None else contextlib.nullcontext()


def stream_seed(seed: int, stream: int) -> int:
    """An integer seed for random stream `stream` of a run, independent of `seed`'s own stream."""
    return int(np.random.SeedSequence(seed, spawn_key=(stream,)).generate_state(1, np.uint64)[0])


class Trainer:
    """Trains a GPT as `config` says, calling back into `callbacks` along the way.

    Callbacks are plain objects; each may define any of these methods (all optional):
        on_train_start(trainer)             after set-up (and resume), before the first step
        on_after_backward(trainer, step)    gradients ready and clipped, before optimizer.step()
        on_step(trainer, step, metrics)     after optimizer.step(), before the gradients are
                                            cleared; metrics is the step record (see _log)
        on_eval(trainer, step, metrics)     after each evaluation (train/val loss)
        on_train_end(trainer)               after the last step and the final checkpoint

    Data parallelism (descent.distributed) plugs in through `rank`, `world_size` and `is_main`:
    with world_size > 1 the model is wrapped in `DistributedDataParallel` (gradients averaged
    across ranks), each rank takes its own slice of every global batch (`TokenStream`
    sharding), logged losses are averaged over ranks, and only the main process writes files,
    logs and progress bars. `model` is the (possibly wrapped) model that runs forward;
    `raw_model` stays the bare GPT that checkpoints save.

    Attributes:
        config, model, raw_model, optimizer, tokenizer, stream, step (the last completed step),
        train_gen / eval_gen (batch generators), out_dir (Path), best_val_loss, last_eval.
    """

    def __init__(
        self,
        config: TrainConfig,
        callbacks: list | tuple = (),
        *,
        rank: int = 0,
        world_size: int = 1,
        is_main: bool | None = None,
        compile: bool | None = None,  # torch.compile's name; overrides config.compile
    ) -> None:
        if compile is not None:
            config = dataclasses.replace(config, compile=bool(compile))
        self.config = config
        self.callbacks = list(callbacks)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.is_main = (self.rank == 0) if is_main is None else bool(is_main)
        self.out_dir = Path(config.out_dir)
        self.step = 0
        self.best_val_loss = math.inf
        self.last_eval: dict | None = None
        self._metrics_file = None
        self._lock: runfolder.RunLock | None = None
        # Everything that can fail on one rank alone happens in _prepare, before the first
        # collective; under MPI the ranks then compare notes (`_agree`), so a missing file on
        # one rank, or different flags, end every rank with the same one-line error instead of
        # leaving the others waiting forever in a collective.
        error, ckpt = None, None
        try:
            ckpt = self._prepare()
        except ConfigError as e:
            error = e
        if self.world_size > 1:
            error = self._agree(error)
        if error is not None:
            self.close()
            raise error
        try:
            self._build(ckpt)
        except BaseException:
            self.close()
            raise

    # -- set-up --------------------------------------------------------------------------------

    def _prepare(self) -> runfolder.RunCheckpoint | None:
        """Validate, lock the output folder, read the checkpoint and the data: no collectives."""
        cfg = self.config
        cfg.validate()
        self.tokens_per_step = (  # over all ranks: batch_size is the global batch
            cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps
        )
        # Data parallel: each rank takes its slice of the global batch, so a run (and its
        # resume) sees the same data with any number of ranks.
        if cfg.batch_size % self.world_size:
            raise ConfigError(
                f"batch_size {cfg.batch_size} does not split over {self.world_size} ranks: "
                f"use a multiple of {self.world_size}"
            )
        self.local_batch_size = cfg.batch_size // self.world_size
        if self.is_main:
            self._prepare_out_dir()
        ckpt = self._read_checkpoint() if cfg.resume else None
        self.tokenizer, self.stream = load_text_data(
            cfg.data, cfg.block_size, ckpt.tokenizer if ckpt is not None else None,
            rank=self.rank, world_size=self.world_size, tokenizer_kind=cfg.tokenizer,
            vocab_size=cfg.vocab_size,
        )  # fmt: skip
        self.model_config = cfg.model_config(self.tokenizer.vocab_size)
        try:
            if isinstance(self.model_config, GrokConfig):  # exact shapes; no memory model yet
                if ckpt is not None:
                    shapes = {k: tuple(v.shape) for k, v in ckpt.state_dict.items()}
                    GrokConfig.from_checkpoint(self.model_config.to_dict(), shapes)
            elif ckpt is not None:  # the run's shape must be the file's before anything is built
                preflight.check_gpt_against_tensors(
                    self.model_config, {k: tuple(v.shape) for k, v in ckpt.state_dict.items()}
                )
            if not isinstance(self.model_config, GrokConfig):  # the estimate is GPT's
                preflight.check_training_memory(
                    self.model_config, self.local_batch_size, cfg.gradient_accumulation_steps,
                    cfg.eval_iters,
                )  # fmt: skip
        except ValueError as e:
            where = f"--resume: {str(self.checkpoint_path)!r}: " if ckpt is not None else ""
            raise ConfigError(where + str(e)) from None
        return ckpt

    def _agree(self, error: ConfigError | None) -> ConfigError | None:
        """Every rank's configuration, error and corpus checksum, compared on every rank."""
        from .distributed import agree

        config = self.config.to_dict()
        stream = getattr(self, "stream", None)
        corpus = agree.checksum(stream.splits["train"], stream.splits["val"]) if stream else None
        message, warnings = agree.start_check(
            config, None if error is None else str(error), corpus,
            ignore=("progress", "data"), warn_only=("learning_rate", "seed"),
        )  # fmt: skip
        if self.is_main:
            for w in warnings:
                print(f"descent: warning: {w}", file=sys.stderr, flush=True)
        if message is None:
            return None
        agreed = ConfigError(message)
        agreed.agreed = True  # every rank raises it: the job may end normally (exit 2)
        return agreed

    def _build(self, ckpt: runfolder.RunCheckpoint | None) -> None:
        cfg = self.config
        # Seed before building the model: the initial weights depend only on the seed.
        descent.manual_seed(cfg.seed)
        if isinstance(self.model_config, GrokConfig):
            self.raw_model = Grok(self.model_config, cfg.aux_loss_weight, cfg.router_z_loss_weight)
        else:
            self.raw_model = GPT(self.model_config)
        if cfg.device != "cpu":
            self.raw_model.to(cfg.device)
        self.model = self.raw_model
        if self.world_size > 1:
            from .distributed import DistributedDataParallel

            self.model = DistributedDataParallel(self.raw_model)
        self.optimizer = self.raw_model.configure_optimizers(
            cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), cfg.device,
            optimizer=cfg.optimizer, muon_lr=cfg.muon_lr, muon_momentum=cfg.muon_momentum,
            muon_weight_decay=cfg.muon_weight_decay,
        )  # fmt: skip
        # Three independent random streams, so that evaluating never shifts the training data
        # and every stream can be saved and restored exactly.
        # Training batches: one seed for all ranks; the stream gives each rank its own slice of
        # the global batch, so the generators of all ranks stay in step.
        # Each stream's seed is derived from cfg.seed through NumPy's SeedSequence: a
        # Generator(cfg.seed) would replay the very bits that drew the initial weights, tying
        # the batch order to the weights.
        self.train_gen = descent.Generator(stream_seed(cfg.seed, 1))
        self.eval_gen = descent.Generator(stream_seed(cfg.seed, 2))  # evaluation batches
        # dropout draws from descent's default generator, seeded by manual_seed above
        if ckpt is not None:
            self._restore(ckpt)
        if self.is_main:
            # Temporary file + rename: a planted link at config.json is replaced, not followed.
            runfolder.write_text(self.out_dir / CONFIG_NAME,
                                 json.dumps(self.config.to_dict(), indent=2))  # fmt: skip
            self._open_metrics()

    def _prepare_out_dir(self) -> None:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if not self.out_dir.is_dir():
                raise ConfigError(f"output directory {str(self.out_dir)!r} is not a directory")
            runfolder.probe_writable(self.out_dir)
        except OSError as e:
            raise ConfigError(
                f"output directory {str(self.out_dir)!r} is not writable: {e.strerror or e}"
            ) from e
        try:
            self._lock = runfolder.RunLock(self.out_dir).acquire()
            for name in (CHECKPOINT_NAME, METRICS_NAME, CONFIG_NAME):
                runfolder.check_run_file(self.out_dir / name)
        except runfolder.RunFolderError as e:
            raise ConfigError(str(e)) from None

    def close(self) -> None:
        """Close metrics.jsonl and release the output folder's lock (train() ends with this)."""
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _to_device(self, *tensors):
        if self.config.device == "cpu":
            return tensors
        return tuple(t.to(self.config.device) for t in tensors)

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / CHECKPOINT_NAME

    def _read_checkpoint(self) -> runfolder.RunCheckpoint:
        path = self.checkpoint_path
        if not os.path.lexists(path):
            raise ConfigError(
                f"--resume: no checkpoint at {str(path)!r}; train without --resume first"
            )
        try:
            ckpt = runfolder.read_run_checkpoint(path)
        except (OSError, ValueError) as e:  # RunFolderError and CheckpointError are ValueErrors
            raise ConfigError(f"--resume: cannot use {str(path)!r}: {e}") from None
        saved = ckpt.meta.get("train_config", {})
        # The model's shape must match the checkpoint; the schedule may change (e.g. more
        # iterations), so only the shape fields are taken from the checkpoint.
        for name in ("n_layer", "n_head", "n_embd", "block_size", "bias"):
            if name in saved and saved[name] != getattr(self.config, name):
                raise ConfigError(
                    f"--resume: the checkpoint has {name}={saved[name]} but the run asks for "
                    f"{name}={getattr(self.config, name)}; drop the flag or start a new --out"
                )
        if ckpt.step > self.config.max_iters:
            raise ConfigError(
                f"--resume: the checkpoint is at step {ckpt.step}, past max_iters="
                f"{self.config.max_iters}: nothing would be trained or written; pass "
                f"--max-iters above {ckpt.step} to continue"
            )
        return ckpt

    def _restore(self, ckpt: runfolder.RunCheckpoint) -> None:
        """Load the (already validated) checkpoint: weights, optimizer, step, random streams."""
        from . import io as dio

        try:
            dio.load(ckpt.path, self.raw_model, self.optimizer, map_location=self.config.device)
        except (OSError, ValueError) as e:
            raise ConfigError(f"--resume: cannot load {str(ckpt.path)!r}: {e}") from None
        meta = ckpt.meta
        self.step = ckpt.step
        best = meta.get("best_val_loss")
        self.best_val_loss = math.inf if best is None else float(best)
        rng = meta["rng"]  # each state was tried on a scratch generator by read_run_checkpoint
        self.train_gen.set_state(rng["train"])
        self.eval_gen.set_state(rng["eval"])
        descent.default_generator().set_state(rng["dropout"])
        if self.is_main:
            # Steps after the checkpoint were lost with the process; the resumed run writes them
            # again, so drop their records to keep one record per step.
            self._truncate_metrics(self.step)

    def save_checkpoint(self) -> None:
        """Write `out_dir/ckpt.safetensors` atomically (main process only).

        Raises:
            ConfigError: the file cannot be written (a full disk, lost permissions); the
                previous checkpoint is untouched (the write goes to a temporary file first).
        """
        if not self.is_main:
            return
        from . import io as dio

        try:
            runfolder.check_run_file(self.checkpoint_path)
            dio.save(
                self.checkpoint_path,
                self.raw_model,
                self.optimizer,
                step=self.step,
                model_config=self.model_config.to_dict(),
                train_config=self.config.to_dict(),
                tokenizer=self.tokenizer.to_dict(),
                best_val_loss=self.best_val_loss if math.isfinite(self.best_val_loss) else None,
                rng={
                    "train": self.train_gen.get_state(),
                    "eval": self.eval_gen.get_state(),
                    "dropout": descent.default_generator().get_state(),
                },
            )
        except (OSError, runfolder.RunFolderError) as e:
            kept = "the previous checkpoint is kept" if self.checkpoint_path.is_file() else (
                "no checkpoint was written")  # fmt: skip
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise ConfigError(
                f"cannot write the checkpoint at step {self.step} to "
                f"{str(self.checkpoint_path)!r}: {why}; {kept}. Free some space (or fix the "
                "folder) and continue with --resume"
            ) from None

    # -- metrics -------------------------------------------------------------------------------

    def _open_metrics(self) -> None:
        # A fresh run starts a fresh log (an old run in the same folder is overwritten, as its
        # checkpoint will be); a resumed run appends to its own. Neither follows a link.
        path = self.out_dir / METRICS_NAME
        try:
            if not self.config.resume:
                runfolder.write_text(path, "")
            self._metrics_file = runfolder.open_append(path)
        except (OSError, runfolder.RunFolderError) as e:
            raise ConfigError(str(e)) from None

    def _truncate_metrics(self, step: int) -> None:
        try:
            runfolder.truncate_metrics(self.out_dir / METRICS_NAME, step)
        except (OSError, runfolder.RunFolderError) as e:
            raise ConfigError(f"--resume: {e}") from None

    def _log(self, record: dict) -> None:
        """Append one record to metrics.jsonl.

        Two kinds of record:
            {"kind": "step", "step", "loss", "lr", "grad_norm", "ms_per_iter", "tokens_per_sec",
             "elapsed_s"}
            {"kind": "eval", "step", "train_loss", "val_loss", "lr"}
        """
        if self.is_main and self._metrics_file is not None:
            self._metrics_file.write(json.dumps(record) + "\n")

    def _mean_over_ranks(self, value: float) -> float:
        """The average of a scalar over all ranks (the value itself in one process)."""
        if self.world_size == 1:
            return value
        from . import distributed as dist

        t = descent.tensor([value], dtype=descent.float64)
        dist.all_reduce(t, op="mean")
        return float(t.item())

    def _callback(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    # -- the loop ------------------------------------------------------------------------------

    def get_lr(self, step: int) -> float:
        """The learning rate of step `step` (1-based): nanoGPT's warm-up then cosine decay.

        Step k is nanoGPT's iteration k - 1, so the schedule is nanoGPT's to the iteration.
        """
        cfg = self.config
        if not cfg.decay_lr:
            return cfg.learning_rate
        from .optim.lr_scheduler import warmup_cosine_lr

        return warmup_cosine_lr(
            max(step - 1, 0), cfg.warmup_iters, cfg.lr_decay_iters, cfg.learning_rate, cfg.min_lr
        )

    def get_batch(self, split: str, generator: descent.Generator):
        """(x, y): (batch_size, block_size) token ids and the ids one position later."""
        x, y = self.stream.get_batch(
            split, self.local_batch_size, self.config.block_size, generator
        )
        return self._to_device(x, y)

    @descent.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split, in eval mode (no dropout)."""
        self.raw_model.eval()  # the bare model: a data-parallel wrapper need not have modes
        out = {}
        for split in ("train", "val"):
            losses = np.empty(self.config.eval_iters)
            for i in range(self.config.eval_iters):
                x, y = self.get_batch(split, self.eval_gen)
                _, loss = self.raw_model(x, y)  # no gradients: no data-parallel wrapper needed
                losses[i] = loss.item()
            out[split] = self._mean_over_ranks(float(losses.mean()))
        self.raw_model.train()
        return out

    def _val_units(self, val_loss: float) -> dict[str, float]:
        """val_loss (nats per token) in bits per character and bits per byte of the val text."""
        if not hasattr(self, "_val_counts"):
            val = self.stream.splits["val"]
            text = self.tokenizer.decode(val)
            self._val_counts = (len(val), len(text), len(text.encode("utf-8")))
        n_tok, n_char, n_byte = self._val_counts
        nats = val_loss * n_tok
        return {"val_bits_per_char": nats / n_char / math.log(2),
                "val_bits_per_byte": nats / n_byte / math.log(2)}  # fmt: skip

    def _run_eval(self, step: int, lr: float) -> dict:
        losses = self.evaluate()
        self.best_val_loss = min(self.best_val_loss, losses["val"])
        record = {"kind": "eval", "step": step, "train_loss": losses["train"],
                  "val_loss": losses["val"], "lr": lr}  # fmt: skip
        # Per character and per UTF-8 byte: comparable across tokenizers (docs/grok.md).
        record.update(self._val_units(losses["val"]))
        self.last_eval = record
        self._log(record)
        self._callback("on_eval", step, record)
        return record

    def _forward_backward(self, x, y):
        """One micro-batch: the loss (scaled for gradient accumulation), backpropagated."""
        _, loss = self.model(x, y)
        if self.config.gradient_accumulation_steps > 1:
            loss = loss / self.config.gradient_accumulation_steps
        loss.backward()
        return loss

    def train(self) -> Trainer:
        """Run from the current step to config.max_iters; returns self."""
        from .optim import clip_grad_norm_

        cfg = self.config
        params = [p for p in self.raw_model.parameters() if p.requires_grad]
        ckpt_every = cfg.checkpoint_interval or cfg.eval_interval
        self.raw_model.train()
        self._callback("on_train_start")
        bar = self._progress_bar()
        forward_backward = self._forward_backward
        self.compiled_step = None  # the CompiledFunction with --compile (its .stats)
        if cfg.compile and self.world_size == 1:  # DDP's gradient hooks need the eager engine
            from .compiler import compile as compile_step

            forward_backward = self.compiled_step = compile_step(self._forward_backward)
        t_start = time.perf_counter()
        try:
            if self.step == 0:
                self._run_eval(0, self.get_lr(0))  # the loss before any training (~ ln vocab)
            while self.step < cfg.max_iters:
                step = self.step + 1
                t0 = time.perf_counter()
                lr = self.get_lr(step)
                for group in self.optimizer.param_groups:  # Muon's groups: muon_lr / lr times
                    group["lr"] = lr * group.get("lr_scale", 1.0)
                # Forward and backward over gradient_accumulation_steps micro-batches; scaling
                # each loss makes the summed gradient that of the mean loss.
                loss_sum = 0.0
                parts: dict[str, float] = {}  # a Grok's loss terms (model.aux_losses)
                for micro in range(cfg.gradient_accumulation_steps):
                    x, y = self.get_batch("train", self.train_gen)
                    # DDP averages gradients once per step: the last micro-batch's backward
                    # averages what the others accumulated locally inside no_sync().
                    last = micro == cfg.gradient_accumulation_steps - 1
                    with contextlib.nullcontext() if last else _no_sync(self.model):
                        loss = forward_backward(x, y)
                    loss_sum += loss.item()
                    for key, value in getattr(self.raw_model, "aux_losses", {}).items():
                        share = value.item() / cfg.gradient_accumulation_steps
                        parts[key] = parts.get(key, 0.0) + share
                loss_sum = self._mean_over_ranks(loss_sum)
                # The global gradient norm before clipping: a health signal worth logging.
                grad_norm = float(
                    clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
                )
                self._callback("on_after_backward", step)
                self.optimizer.step()
                self.step = step
                dt = time.perf_counter() - t0
                record = {
                    "kind": "step", "step": step, "loss": loss_sum, "lr": lr,
                    "grad_norm": grad_norm, "ms_per_iter": dt * 1e3,
                    "tokens_per_sec": self.tokens_per_step / dt,
                    "elapsed_s": time.perf_counter() - t_start,
                }  # fmt: skip
                # A mixture of experts' loss is lm + weighted auxiliary losses: each logged alone
                # (lm_loss, load_balance, router_z; docs/grok.md).
                for key, value in parts.items():
                    record["lm_loss" if key == "lm" else key] = self._mean_over_ranks(value)
                if step % cfg.log_interval == 0 or step == cfg.max_iters:
                    self._log(record)
                self._callback("on_step", step, record)
                self.optimizer.zero_grad(set_to_none=True)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum:.4f}", lr=f"{lr:.2e}",
                                    tok_s=f"{record['tokens_per_sec']:.0f}")  # fmt: skip
                last = step == cfg.max_iters
                if step % cfg.eval_interval == 0 or last:
                    ev = self._run_eval(step, lr)
                    if bar is not None:
                        bar.write(f"step {step}: train loss {ev['train_loss']:.4f}, "
                                  f"val loss {ev['val_loss']:.4f}")  # fmt: skip
                if step % ckpt_every == 0 or last:
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
            self.close()  # metrics.jsonl and the folder's lock
        self._callback("on_train_end")
        return self

    def _progress_bar(self):
        if not (self.config.progress and self.is_main):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.config.max_iters, initial=self.step, unit="it",
                    dynamic_ncols=True, desc="train")  # fmt: skip

    # -- using the model -----------------------------------------------------------------------

    def sample(
        self,
        prompt: str | None = None,
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = 200,
        seed: int | None = None,
    ) -> str:
        """Text written by the current model after `prompt` (default: a newline)."""
        return generate_text(
            self.raw_model, self.tokenizer, prompt, max_new_tokens, temperature, top_k,
            seed=self.config.seed if seed is None else seed, device=self.config.device,
        )  # fmt: skip


def train(config: TrainConfig, callbacks: list | tuple = (), **trainer_kwargs) -> Trainer:
    """Build a `Trainer` for `config` and run it to the end; returns the trainer."""
    return Trainer(config, callbacks, **trainer_kwargs).train()


__all__ = [
    "CHECKPOINT_NAME", "CONFIG_NAME", "METRICS_NAME", "ConfigError", "TrainConfig", "Trainer",
    "train", "generate_text", "load_checkpoint", "load_text_data",
]  # fmt: skip
