"""The ``llava-st`` command line: one entry point, a table of subcommands.

Each subcommand lives in its own module of this package with two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). Modules are
imported only when their subcommand runs, so ``llava-st --help`` stays fast and
a missing optional dependency only affects the subcommand that needs it.

Errors are turned into exit codes here, once for every subcommand: a
:class:`~llava_st.errors.LlavaSTError` (the library's word for bad input: a
missing or unreadable file, an invalid option or value, a model folder that
does not fit) prints ``llava-st COMMAND: message`` and exits with 2; an
``OSError`` (a disk that is full, a folder that cannot be written) exits
with 1; anything else is a bug and keeps its traceback. A subcommand may
still return its own code.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
import sys

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ask": ("llava_st.cli.ask", "ask a question about a video or an image"),
    "synth": ("llava_st.cli.synth", "generate the ST-Synth synthetic spatial-temporal dataset"),
    "score": ("llava_st.cli.score", "score predictions against a benchmark's annotations (no model)"),
    "eval": ("llava_st.cli.eval", "run a model on a benchmark and score it"),
    "train": ("llava_st.cli.train", "run one training stage from a recipe (accelerate launch for several GPUs)"),
    "merge-lora": ("llava_st.cli.merge_lora", "fold a LoRA adapter into a base model"),
    "tokenizer": ("llava_st.cli.tokenizer", "train a small tokenizer on ST-Synth text (release token layout)"),
    "demo": ("llava_st.cli.demo", "the embedded model on the bundled sample clip and image (answers and pictures)"),
    "build-tiny": ("llava_st.cli.build_tiny", "reproduce the embedded model from nothing (data, training, evaluation)"),
    "serve": ("llava_st.cli.serve", "serve a model over a REST API (FastAPI on uvicorn)"),
    "ui": ("llava_st.cli.ui", "a web page to try a model on a clip or an image (Gradio)"),
}


def build_parser(available: dict[str, tuple[str, str]] | None = None) -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="llava-st",
        description="LLaVA-ST: when and where in videos and images.",
    )
    parser.add_argument("--version", action="version", version=f"llava-st {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in (available or COMMANDS).items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--version") or argv[0] not in COMMANDS:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 2
        parser.parse_args(argv)  # prints help/version or the unknown-command error
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"llava-st {name}: {exc}", file=sys.stderr)
        return 1
    parser = argparse.ArgumentParser(prog=f"llava-st {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    from ..errors import LlavaSTError

    previous = _exit_on_sigterm()
    try:
        return int(module.run(args) or 0)
    except LlavaSTError as exc:
        print(f"llava-st {name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        print(f"llava-st {name}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"llava-st {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def _exit_on_sigterm():
    """Make SIGTERM (``kill``, a scheduler ending a job) unwind like an exception, so that
    ``finally`` blocks run and a DataLoader shuts its worker processes down; by default the
    process would die on the spot and leave them running. Returns the handler it replaced
    (None where handlers cannot be set: not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminated)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
