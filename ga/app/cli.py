"""`ga adapt`, `ga ask`, `ga chat` and `ga export-peft`: each command's options are a typed dataclass (one field per
option, its type and help beside it) from which its argparse parser is built, and a function that runs it.

Expected mistakes (a missing, empty or binary file, an adapter that is not one, a generator or base model that does not
fit, an option out of range, an output that would replace an input or an existing file) end with one line on stderr
and exit status 1 (`ga.errors`). Options are checked, and outputs (ga.app.output), before any model is loaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

from ga.errors import REPORTED_ERRORS, is_user_error, report

DEFAULT_MAX_NEW_TOKENS = 128
"""Reply length cap: a few sentences; raise it for longer answers."""
EXIT_COMMANDS = ("/exit", "/quit")
ADAPTER_EXAMPLE = "notes.adapter.safetensors"
"""The file name `ga adapt` suggests when --out names a folder."""
Check = Callable[[Any], "str | None"]
"""An option's check: what is wrong with a value (a phrase), or None."""


def option(help: str, default: Any = MISSING, positional: bool = False, check: Check | None = None) -> Any:
    """A command-line option (or, `positional`, argument) of a command's dataclass; `check` rejects wrong values."""
    return field(default=default, metadata={"help": help, "positional": positional, "check": check})


def at_least(minimum: int) -> Check:
    return lambda value: None if value >= minimum else f"must be at least {minimum}"


def not_blank(value: str) -> str | None:
    return None if value.strip() else "is empty; ask a question"


def check_options(args) -> None:
    """A `UsageError` naming the first option of `args` whose value its check rejects."""
    from ga.errors import UsageError

    for spec in dataclasses.fields(args):
        value, check = getattr(args, spec.name), spec.metadata["check"]
        problem = None if check is None or value is None else check(value)
        if problem is not None:
            name = spec.name if spec.metadata["positional"] else "--" + spec.name.replace("_", "-")
            raise UsageError(f"{name} {value!r}: {problem}")


def resolve_device(device: str | None) -> str:
    """The device to run on: `device` (cpu, cuda or cuda:N) when this machine has it, else a `UsageError`; by
    default cuda when available."""
    import torch

    from ga.errors import UsageError

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device)
    except RuntimeError:
        kind = None
    if kind is None or kind.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {device}: not a device this command runs on; use cpu or cuda")
    if kind.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: this machine has no CUDA GPU that PyTorch can use; use --device cpu")
    if kind.type == "cuda" and kind.index is not None and kind.index >= torch.cuda.device_count():
        raise UsageError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    return device


GENERATOR_HELP = (
    "generator folder the adapter was made with (needed unless `ga adapt --record-paths` recorded it; "
    "its weights are checked against the adapter)"
)


@dataclass
class AdaptArgs:
    """encode one or many text files into an adapter file (streaming, constant memory)"""

    generator: Path = option("generator folder (e.g. runs/default/finetune/generator)")
    context: list[Path] = option("text files, read in order as one context")
    out: Path = option("adapter file to write (safetensors); never one of the inputs")
    base_model: str | None = option(
        "base model: a model folder, a model-hub id, or `embedded`; default: the "
        "generator's own (its run's base_model/ folder, or the model it records)",
        None,
    )
    window: int | None = option("tokens per window (default: the generator's training window)", None, check=at_least(1))
    device: str | None = option("cpu or cuda (default: cuda when available)", None)
    force: bool = option("replace --out if it exists", False)
    record_paths: bool = option(
        "record the local paths of the generator, base model folder and files in the "
        "adapter, so that ask/chat/export-peft find the generator without --generator "
        "(default: only hashes, names and sizes: the file can be shared)",
        False,
    )


@dataclass
class AskArgs:
    """answer one question with an adapter applied (greedy)"""

    question: str = option("the question", positional=True, check=not_blank)
    adapter: Path = option("adapter file (from `ga adapt`)")
    max_new_tokens: int = option("at most this many tokens in the answer", DEFAULT_MAX_NEW_TOKENS, check=at_least(1))
    generator: Path | None = option(GENERATOR_HELP, None)
    base_model: str | None = option("base model, if it moved since `ga adapt` (checked against the adapter)", None)
    device: str | None = option("cpu or cuda (default: cuda when available)", None)


@dataclass
class ChatArgs:
    """talk with a model that carries an adapter (history kept; /exit or Ctrl-D ends)"""

    adapter: Path = option("adapter file (from `ga adapt`)")
    max_new_tokens: int = option("at most this many tokens per reply", DEFAULT_MAX_NEW_TOKENS, check=at_least(1))
    transcript: Path | None = option("write the conversation to this JSON file after every turn", None)
    generator: Path | None = option(GENERATOR_HELP, None)
    base_model: str | None = option("base model, if it moved since `ga adapt` (checked against the adapter)", None)
    device: str | None = option("cpu or cuda (default: cuda when available)", None)


@dataclass
class ExportPeftArgs:
    """write an adapter as a standard PEFT LoRA folder (for PEFT, vLLM and other LoRA servers)"""

    adapter: Path = option("adapter file (from `ga adapt`)")
    out: Path = option("folder to write adapter_config.json and adapter_model.safetensors in: a new or empty one")
    generator: Path | None = option(GENERATOR_HELP, None)
    base_model: str | None = option("base model, if it moved since `ga adapt` (checked against the adapter)", None)
    force: bool = option("write the two files into --out even if it holds other files (those are kept)", False)


def adapt(args: AdaptArgs) -> int:
    from ga.app.adapter import base_model_for, load_generator, make_adapter
    from ga.app.context import check_context_file
    from ga.app.output import check_new_file
    from ga.app.progress import byte_progress
    from ga.model import GENERATOR_CONFIG, GENERATOR_WEIGHTS

    # everything that can be checked fails fast, before any model is loaded
    generator_files = [args.generator / GENERATOR_WEIGHTS, args.generator / GENERATOR_CONFIG]
    check_new_file(args.out, [*args.context, *generator_files], args.force, ADAPTER_EXAMPLE)
    files = [check_context_file(path) for path in args.context]
    device = resolve_device(args.device)
    base = base_model_for(args.generator, args.base_model)
    gam, tokenizer = load_generator(args.generator, base, device)
    with byte_progress("adapt", sum(f.bytes for f in files)) as progress:
        state = make_adapter(
            gam,
            tokenizer,
            args.context,
            args.generator,
            base,
            args.window,
            on_bytes=progress.update,
            record_paths=args.record_paths,
        )
    check_new_file(args.out, [*args.context, *generator_files], args.force, ADAPTER_EXAMPLE)  # still, after the work
    state.save(args.out, lora=gam.lora(state))
    print(f"{args.out}: adapter of {state.num_tokens} tokens from {len(files)} file(s)", file=sys.stderr)
    return 0


def ask(args: AskArgs) -> int:
    from ga.app.adapter import open_adapter
    from ga.app.chat import ChatSession

    gam, tokenizer, state = open_adapter(args.adapter, args.generator, args.base_model, resolve_device(args.device))
    with ChatSession(gam, tokenizer, state, args.max_new_tokens) as session:
        print(session.reply(args.question))
    return 0


def chat(args: ChatArgs) -> int:
    from ga.app.adapter import open_adapter
    from ga.app.chat import ChatSession
    from ga.app.output import check_new_file
    from ga.io import write_json

    device = resolve_device(args.device)
    if args.transcript is not None:
        check_new_file(args.transcript, [args.adapter], force=True, example="chat.json")
    gam, tokenizer, state = open_adapter(args.adapter, args.generator, args.base_model, device)
    print(
        f"chatting with {args.adapter} ({state.num_tokens} context tokens); {EXIT_COMMANDS[0]} or Ctrl-D ends",
        file=sys.stderr,
    )
    with ChatSession(gam, tokenizer, state, args.max_new_tokens) as session:
        while True:
            try:
                question = input("you> ").strip()
            except EOFError:
                print(file=sys.stderr)
                break
            if question in EXIT_COMMANDS:
                break
            if not question:
                continue
            print(f"ga> {session.reply(question)}", flush=True)
            if args.transcript is not None:
                write_json(
                    {"adapter": str(args.adapter), "messages": session.messages}, args.transcript, sort_keys=False
                )
    return 0


def export_peft(args: ExportPeftArgs) -> int:
    import ga
    from ga.app.adapter import open_adapter
    from ga.app.output import check_output_folder, files_into_folder
    from ga.export import PEFT_CONFIG, PEFT_WEIGHTS

    check_output_folder(args.out, (PEFT_CONFIG, PEFT_WEIGHTS), [args.adapter], args.force)
    gam, _, state = open_adapter(args.adapter, args.generator, args.base_model, "cpu")
    with files_into_folder(args.out) as build_dir:
        ga.export_peft(gam, state, build_dir)
    print(f"{args.out}: PEFT LoRA adapter of {len(state.module_names)} modules", file=sys.stderr)
    return 0


COMMANDS: dict[str, tuple[type, Callable[[Any], int]]] = {
    "adapt": (AdaptArgs, adapt),
    "ask": (AskArgs, ask),
    "chat": (ChatArgs, chat),
    "export-peft": (ExportPeftArgs, export_peft),
}


def summary(name: str) -> str:
    return COMMANDS[name][0].__doc__.strip()


def _argparse_type(annotation) -> tuple[Any, bool]:
    """(the type that parses one value, whether the option takes several) of a field annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def parser_for(name: str) -> argparse.ArgumentParser:
    """The argparse parser of command `name`, built from its dataclass's typed fields."""
    cls = COMMANDS[name][0]
    parser = argparse.ArgumentParser(prog=f"ga {name}", description=summary(name))
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        kind, many = _argparse_type(hints[spec.name])
        help_text = spec.metadata["help"]
        if spec.metadata["positional"]:
            parser.add_argument(spec.name, type=kind, help=help_text)
            continue
        if kind is bool:
            parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, action="store_true", help=help_text)
            continue
        required = spec.default is MISSING
        if not required and spec.default is not None:
            help_text += f" (default: {spec.default})"
        parser.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            type=kind,
            required=required,
            nargs="+" if many else None,
            default=None if required else spec.default,
            help=help_text,
        )
    return parser


def main(name: str, argv: list[str]) -> int:
    """`ga <name> ...`: parse the command's typed options and run it; a user's mistake ends in one line."""
    cls, run = COMMANDS[name]
    args = cls(**vars(parser_for(name).parse_args(argv)))
    try:
        check_options(args)
        return run(args)
    except REPORTED_ERRORS as err:
        if not is_user_error(err):
            raise
        return report(name, err)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
