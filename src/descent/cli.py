"""The `descent` command line: train a GPT, sample from it, explain a run.

    descent train --preset baby-gpt --max-iters 600 --out out/demo --report
    descent sample --checkpoint out/demo --prompt "def " --tokens 300
    descent explain out/demo

Every field of `descent.train.TrainConfig` is a flag (`--n-layer`, `--batch-size`,
`--learning-rate`, ...), applied on top of the preset. User mistakes (bad flags, a missing data
file, an unwritable output folder, a missing checkpoint) print one line on stderr and exit with
status 2; they never show a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
import typing
from pathlib import Path

EXIT_USAGE = 2


class UsageError(Exception):
    """A user mistake: reported as one line on stderr, exit status 2.

    `agreed` is True when every rank of an MPI job raises the same error (start-up checks): the
    job then ends normally; otherwise the rank that saw it aborts the whole job.
    """

    def __init__(self, message: str, agreed: bool = False) -> None:
        super().__init__(message)
        self.agreed = agreed


def _usage(e: Exception, prefix: str = "") -> UsageError:
    """A UsageError carrying a ConfigError's message and whether all ranks agreed on it."""
    return UsageError(prefix + str(e), agreed=bool(getattr(e, "agreed", False)))


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (argparse prints the whole usage block by default)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Flags whose names differ from the TrainConfig field, and fields that are not plain flags.
_FLAG_NAMES = {"out_dir": "--out"}
_SPECIAL = {"resume", "preset"}


@functools.lru_cache(maxsize=1)
def _train_config_hints() -> dict:
    # get_type_hints evaluates every annotation of the class: once, not once per field (that
    # was quadratic, and most of the start-up time of `descent sample`).
    return typing.get_type_hints(_train_config_class())


def _field_type(f: dataclasses.Field):
    """int, float, str or bool for a TrainConfig field (resolving 'int | None' annotations)."""
    tp = _train_config_hints()[f.name]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def _train_config_class():
    from .train import TrainConfig

    return TrainConfig


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `descent` (subcommands train, sample, explain)."""
    from .models.gpt import PRESETS
    from .models.grok import GROK_PRESETS

    parser = _Parser(prog="descent", description="descent: train, sample and explain models.")
    sub = parser.add_subparsers(dest="command", metavar="{train,sample,explain}",
                                parser_class=_Parser)  # fmt: skip

    # -- train ---------------------------------------------------------------------------------
    tr = sub.add_parser(
        "train", help="train a character-level GPT",
        description="Train a character-level GPT (nanoGPT's recipe). Preset values apply first; "
        "every other flag overrides one field.",
    )  # fmt: skip
    tr.add_argument("--preset", choices=sorted({**PRESETS, **GROK_PRESETS}), default="baby-gpt",
                    help="model + schedule to start from (default: baby-gpt)")  # fmt: skip
    tr.add_argument("--resume", action="store_true",
                    help="continue from the checkpoint in --out")  # fmt: skip
    tr.add_argument(
        "--report", action="store_true",
        help="record gradient figures and write OUT/report.html at the end",
    )  # fmt: skip
    tr.add_argument(
        "--curvature-every", type=_positive_int, default=None, metavar="N", dest="curvature_every",
        help="with --report: every N steps, the sharpness (top Hessian eigenvalue) against the "
        "optimizer's edge of stability, in OUT/curvature.jsonl and the report (about 40 "
        "extra backward passes each time; docs/explain.md, Curvature)",
    )  # fmt: skip
    tr.add_argument("--prompt", default=None, help="prompt of the final text sample")
    helps = {
        "data": "'python' (the Python standard library's source, default), 'shakespeare', "
        "or a path to a text file",
        "out_dir": "output folder (default: out/PRESET)",
        "device": "cpu or cuda",
        "checkpoint_interval": "save every N steps (default: at each evaluation)",
        "sample_tokens": "characters in the final sample (0: none)",
        "compile": "record each step's forward+backward once, replay it (docs/compile.md)",
    }
    for f in dataclasses.fields(_train_config_class()):
        if f.name in _SPECIAL:
            continue
        flag = _FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
        tp = _field_type(f)
        kwargs = {"dest": f.name, "default": None, "help": helps.get(f.name)}
        if tp is bool:
            tr.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if f.name == "device":
            kwargs["choices"] = ["cpu", "cuda"]
        tr.add_argument(flag, type=tp, metavar=f.name.upper(), **kwargs)

    # -- sample --------------------------------------------------------------------------------
    sa = sub.add_parser(
        "sample", help="write text with a trained checkpoint",
        description="Sample text from a checkpoint written by `descent train`.",
    )  # fmt: skip
    sa.add_argument("--checkpoint", required=True,
                    help="a run's output folder or its ckpt.safetensors")  # fmt: skip
    sa.add_argument("--prompt", default=None, help="text to continue (default: a newline)")
    sa.add_argument("--tokens", type=_positive_int, default=500, help="characters to generate")
    sa.add_argument("--temperature", type=float, default=0.8,
                    help="< 1 safer, > 1 wilder, 0 greedy (default 0.8)")  # fmt: skip
    sa.add_argument("--top-k", type=_positive_int, default=200, dest="top_k",
                    help="sample among the K most likely characters (default 200)")  # fmt: skip
    sa.add_argument("--seed", type=int, default=1337)
    sa.add_argument("--device", choices=["cpu", "cuda"], default="cpu")

    # -- explain (argument parsing belongs to descent.explain.cli) -----------------------------
    sub.add_parser("explain", help="turn a run's output folder into OUT/report.html",
                   add_help=False)  # fmt: skip
    return parser


# ---------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import ConfigError, TrainConfig, Trainer

    if args.curvature_every and not args.report:
        raise UsageError("--curvature-every records into the run's report: add --report", True)
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name not in _SPECIAL and getattr(args, f.name, None) is not None
    }
    overrides.setdefault("out_dir", str(Path("out") / args.preset))
    overrides["resume"] = bool(args.resume)
    base = _resumed_config(overrides["out_dir"]) if args.resume else None
    if base is None and "max_iters" in overrides:
        # A shorter or longer run than the preset's: the cosine decay keeps its share of the
        # run (baby-gpt's ends with the run; speedrun-cpu's ends at a sixth of it).
        preset = TrainConfig.from_preset(args.preset)
        share = preset.lr_decay_iters / preset.max_iters
        overrides.setdefault("lr_decay_iters", max(1, round(share * overrides["max_iters"])))

    rank, world_size = 0, 1
    try:
        from . import distributed as dist

        if dist.launched_by_mpi():
            dist.init()
            rank, world_size = dist.get_rank(), dist.get_world_size()
    except ImportError:
        pass
    is_main = rank == 0

    try:
        if base is not None:  # resuming: the run's own settings, then the flags given now
            config = TrainConfig.from_dict({**base, **overrides})
        else:
            config = TrainConfig.from_preset(args.preset, **overrides)
        if not is_main:
            config.progress = False
        callbacks = []
        if args.report and is_main:
            callbacks += _report_callbacks(config.out_dir, args.curvature_every or 0)
        trainer = Trainer(config, callbacks, rank=rank, world_size=world_size)
    except ConfigError as e:
        raise _usage(e) from None
    if args.prompt:  # check the prompt now rather than after minutes of training
        try:
            trainer.tokenizer.encode(args.prompt)
        except ValueError as e:
            trainer.close()
            # every rank holds the same tokenizer, so every rank fails here
            raise UsageError(f"--prompt: {e}", agreed=True) from None

    if is_main:
        n = trainer.raw_model.num_parameters()
        what = "resuming at step " + str(trainer.step) if trainer.step else "training"
        print(
            f"descent: {what} a {_count(n)}-parameter {type(trainer.raw_model).__name__} "
            f"({config.n_layer} layers, {config.n_head} heads, width {config.n_embd}, context "
            f"{config.block_size}) on {config.data or 'python'} "
            f"({len(trainer.stream.train):,} train / {len(trainer.stream.val):,} val "
            f"{'tokens' if config.tokenizer == 'subword' else 'characters'}, "
            f"vocabulary {trainer.tokenizer.vocab_size}) for {config.max_iters} steps",
            flush=True,
        )
    start = trainer.step
    try:
        trainer.train()
    except ConfigError as e:  # e.g. the disk filled up while saving a checkpoint
        raise _usage(e) from None
    if not is_main:
        return 0
    if trainer.step == start and start > 0:
        print(f"descent: the checkpoint in {config.out_dir} is already at step {start} = "
              f"--max-iters: nothing to train; pass a larger --max-iters to continue")  # fmt: skip
        return 0

    if trainer.last_eval is not None:
        ev = trainer.last_eval
        print(f"final: step {ev['step']}, train loss {ev['train_loss']:.4f}, "
              f"val loss {ev['val_loss']:.4f}")  # fmt: skip
    if config.sample_tokens > 0:
        try:
            text = trainer.sample(args.prompt, config.sample_tokens)
        except ValueError as e:
            raise UsageError(f"--prompt: {e}") from e
        print("-" * 30 + " sample " + "-" * 30)
        print(text)
        print("-" * 68)
    out = Path(config.out_dir)
    print(f"wrote {out / 'ckpt.safetensors'} (checkpoint), {out / 'metrics.jsonl'} (metrics), "
          f"{out / 'config.json'} (config)")  # fmt: skip
    if args.report:
        _write_report(out)
    return 0


def _count(n: int) -> str:
    """12345 -> '12,345'; 812345 -> '0.81M'."""
    return f"{n / 1e6:.2f}M" if n >= 100_000 else f"{n:,}"


def _resumed_config(out_dir: str) -> dict | None:
    """The TrainConfig saved in OUT's checkpoint, or None (Trainer then explains the problem)."""
    from . import io as dio
    from .train import CHECKPOINT_NAME

    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return None
    try:
        saved = dio.read_metadata(path).get("train_config")
    except (OSError, ValueError) as e:
        raise UsageError(f"--resume: cannot read {str(path)!r}: {e}") from e
    return dict(saved) if isinstance(saved, dict) else None


def _report_callbacks(out_dir: str, curvature_every: int = 0) -> list:
    """The explain helper's recording callback, when descent.explain.monitor exists."""
    try:
        from .explain.monitor import ReportCallback
    except ImportError as e:
        print(f"descent: note: --report records no gradient figures ({e})", file=sys.stderr)
        return []
    return [ReportCallback(out_dir, curvature_every=curvature_every)]


def _write_report(out: Path) -> None:
    try:
        from .explain.report import write_report
    except ImportError as e:
        print(f"descent: note: no report written (descent.explain.report unavailable: {e})",
              file=sys.stderr)  # fmt: skip
        return
    path = write_report(out)
    print(f"report: {path if path is not None else out / 'report.html'}")


def _cmd_sample(args: argparse.Namespace) -> int:
    from . import backend
    from .train import generate_text, load_checkpoint

    if args.device == "cuda" and not backend.cuda_available():
        raise UsageError("--device cuda: no CUDA GPU is usable here; use --device cpu")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        raise UsageError(f"--temperature must be a finite number >= 0 (0: greedy), got "
                         f"{args.temperature}")  # fmt: skip
    if args.seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {args.seed}")
    try:
        model, tokenizer, _ = load_checkpoint(args.checkpoint, device=args.device)
    except FileNotFoundError as e:
        raise UsageError(f"--checkpoint: {e}; train one with `descent train --out DIR`") from e
    except (ValueError, OSError, KeyError) as e:
        raise UsageError(f"--checkpoint {args.checkpoint!r} cannot be read: {e}") from e
    bad = _non_finite_weights(model)
    if bad:
        raise UsageError(
            f"--checkpoint {args.checkpoint!r}: the weights hold NaN or Inf (in {bad}); the run "
            "diverged before this checkpoint: use an earlier one, or retrain with a lower "
            "--learning-rate"
        )
    if args.prompt:  # the prompt's characters must be the model's
        try:
            tokenizer.encode(args.prompt)
        except ValueError as e:
            raise UsageError(f"--prompt: {e}") from None
    try:
        text = generate_text(model, tokenizer, args.prompt, args.tokens, args.temperature,
                             args.top_k, seed=args.seed, device=args.device)  # fmt: skip
    except ValueError as e:
        raise UsageError(f"cannot sample: {e}") from None
    print(text)
    return 0


def _non_finite_weights(model) -> str:
    """Names of the first few parameters holding NaN or Inf ('' when all are finite)."""
    import numpy as np

    from . import backend

    bad = [n for n, p in model.named_parameters()
           if not np.isfinite(backend.as_numpy(p._data)).all()]  # fmt: skip
    return ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")


def _cmd_explain(argv: list[str]) -> int:
    try:
        from .explain.cli import main as explain_main
    except ImportError as e:
        raise UsageError(f"explain is unavailable in this installation ({e})") from e
    return int(explain_main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    """Run `descent ...`; returns the exit status (0 success, 2 user error).

    Run as the program (`argv` None: the `descent` command, `python -m descent`), it owns its
    process and applies descent's malloc tuning (`backend.tune_malloc()`, unless
    DESCENT_MALLOC_TUNE=0); called with an explicit `argv` from another program, it leaves
    that process's malloc alone.
    """
    if argv is None:
        from . import backend

        backend.tune_malloc()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "explain":  # its own parser handles its flags and --help
        try:
            return _cmd_explain(argv[1:])
        except UsageError as e:
            print(f"descent explain: error: {e}", file=sys.stderr)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "train":
            return _cmd_train(args)
        return _cmd_sample(args)
    except UsageError as e:
        rank, world = _mpi_place()
        if world > 1 and e.agreed and rank != 0:
            return EXIT_USAGE  # every rank has the same error: rank 0 says it once
        where = f" (rank {rank})" if world > 1 and not e.agreed else ""
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"descent {args.command}{where}: error: {message}", file=sys.stderr, flush=True)
        if world > 1 and not e.agreed:
            _abort(EXIT_USAGE)  # the other ranks are inside a collective: end them too
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"descent {args.command}: interrupted", file=sys.stderr)
        _abort(130)
        return 130


def _mpi_place() -> tuple[int, int]:
    """(rank, world size) when this process runs in an initialised MPI job, else (0, 1)."""
    mod = sys.modules.get("descent.distributed.comm")
    if mod is None or not mod.is_initialized():
        return 0, 1
    return mod.get_rank(), mod.get_world_size()


def _abort(code: int) -> None:
    """End every rank of an MPI job (an error only this rank saw); nothing without MPI."""
    if _mpi_place()[1] > 1:
        from .distributed.agree import abort

        abort(code)


if __name__ == "__main__":
    raise SystemExit(main())
