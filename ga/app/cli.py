"""`ga adapt`, `ga ask`, `ga chat` and `ga export-peft`: each command's options are a typed dataclass (one field per
option, its type and help beside it) from which its argparse parser is built, and a function that runs it.

Expected mistakes (a missing, empty or binary file, an adapter that is not one, a generator or base model that does not
fit) end with one line on stderr and exit status 1 (`ga.errors`).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ga.errors import REPORTED_ERRORS, is_user_error, report

DEFAULT_MAX_NEW_TOKENS = 128
"""Reply length cap: a few sentences; raise it for longer answers."""
EXIT_COMMANDS = ("/exit", "/quit")


def option(help: str, default: Any = MISSING, positional: bool = False) -> Any:
    """A command-line option (or, `positional`, argument) of a command's dataclass."""
    return field(default=default, metadata={"help": help, "positional": positional})


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class AdaptArgs:
    """encode one or many text files into an adapter file (streaming, constant memory)"""

    generator: Path = option("generator folder (e.g. runs/default/finetune/generator)")
    context: list[Path] = option("text files, read in order as one context")
    out: Path = option("adapter file to write (safetensors)")
    base_model: str | None = option("base model: a model folder, a model-hub id, or `embedded`; default: the "
                                    "generator's own (its run's base_model/ folder, or the model it records)", None)
    window: int | None = option("tokens per window (default: the generator's training window)", None)
    device: str | None = option("cpu or cuda (default: cuda when available)", None)


@dataclass
class AskArgs:
    """answer one question with an adapter applied (greedy)"""

    question: str = option("the question", positional=True)
    adapter: Path = option("adapter file (from `ga adapt`)")
    max_new_tokens: int = option("at most this many tokens in the answer", DEFAULT_MAX_NEW_TOKENS)
    generator: Path | None = option("generator folder, if it moved since `ga adapt` (checked against the adapter)",
                                    None)
    base_model: str | None = option("base model, if it moved since `ga adapt` (checked against the adapter)", None)
    device: str | None = option("cpu or cuda (default: cuda when available)", None)


@dataclass
class ChatArgs:
    """talk with a model that carries an adapter (history kept; /exit or Ctrl-D ends)"""

    adapter: Path = option("adapter file (from `ga adapt`)")
    max_new_tokens: int = option("at most this many tokens per reply", DEFAULT_MAX_NEW_TOKENS)
    transcript: Path | None = option("write the conversation to this JSON file after every turn", None)
    generator: Path | None = option("generator folder, if it moved since `ga adapt` (checked against the adapter)",
                                    None)
    base_model: str | None = option("base model, if it moved since `ga adapt` (checked against the adapter)", None)
    device: str | None = option("cpu or cuda (default: cuda when available)", None)


@dataclass
class ExportPeftArgs:
    """write an adapter as a standard PEFT LoRA folder (for PEFT, vLLM and other LoRA servers)"""

    adapter: Path = option("adapter file (from `ga adapt`)")
    out: Path = option("folder to write (adapter_config.json + adapter_model.safetensors)")
    generator: Path | None = option("generator folder, if it moved since `ga adapt` (checked against the adapter)",
                                    None)
    base_model: str | None = option("base model, if it moved since `ga adapt` (checked against the adapter)", None)


def adapt(args: AdaptArgs) -> int:
    from tqdm import tqdm

    from ga.app.adapter import base_model_for, load_generator, make_adapter
    from ga.app.context import check_context_file

    files = [check_context_file(path) for path in args.context]  # fails fast, before any model is loaded
    base = base_model_for(args.generator, args.base_model)
    gam, tokenizer = load_generator(args.generator, base, args.device or default_device())
    # tqdm's default: a bar on a terminal, nothing when stderr is redirected (logs, tests)
    with tqdm(total=sum(f.bytes for f in files), unit="B", unit_scale=True, desc="adapt", disable=None) as bar:
        state = make_adapter(gam, tokenizer, args.context, args.generator, base, args.window, on_bytes=bar.update)
    state.save(args.out, lora=gam.lora(state))
    print(f"{args.out}: adapter of {state.num_tokens} tokens from {len(files)} file(s)", file=sys.stderr)
    return 0


def ask(args: AskArgs) -> int:
    from ga.app.adapter import open_adapter
    from ga.app.chat import ChatSession

    gam, tokenizer, state = open_adapter(args.adapter, args.generator, args.base_model, args.device or default_device())
    with ChatSession(gam, tokenizer, state, args.max_new_tokens) as session:
        print(session.reply(args.question))
    return 0


def chat(args: ChatArgs) -> int:
    from ga.app.adapter import open_adapter
    from ga.app.chat import ChatSession
    from ga.io import write_json

    gam, tokenizer, state = open_adapter(args.adapter, args.generator, args.base_model, args.device or default_device())
    print(f"chatting with {args.adapter} ({state.num_tokens} context tokens); {EXIT_COMMANDS[0]} or Ctrl-D ends",
          file=sys.stderr)
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
                write_json({"adapter": str(args.adapter), "messages": session.messages}, args.transcript,
                           sort_keys=False)
    return 0


def export_peft(args: ExportPeftArgs) -> int:
    import ga
    from ga.app.adapter import open_adapter
    from ga.io import atomic_dir

    gam, _, state = open_adapter(args.adapter, args.generator, args.base_model, "cpu")
    with atomic_dir(args.out) as build_dir:
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
        required = spec.default is MISSING
        if not required and spec.default is not None:
            help_text += f" (default: {spec.default})"
        parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, type=kind, required=required,
                            nargs="+" if many else None, default=None if required else spec.default, help=help_text)
    return parser


def main(name: str, argv: list[str]) -> int:
    """`ga <name> ...`: parse the command's typed options and run it; a user's mistake ends in one line."""
    cls, run = COMMANDS[name]
    args = cls(**vars(parser_for(name).parse_args(argv)))
    try:
        return run(args)
    except REPORTED_ERRORS as err:
        if not is_user_error(err):
            raise
        return report(name, err)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
