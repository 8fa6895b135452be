"""The ``herschik`` command line (reference: docs/CLI.md).

Exit codes: 0 solved (optimal or feasible within the limit), 1 infeasible scenario (the
diagnosis is printed and written to summary.json), 2 bad input or usage (one line on stderr).
The parser and the table of commands live in parser.py, ``regions`` in dataset.py, every
other command in its own module of this package (solve.py, data.py, compare.py, ...); a
command's module is imported only when it runs (``python -m herschik.scenarios.cli`` runs
__main__.py). This module maps every failure to its exit code, once.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any

from herschik.scenarios.cli.parser import COMMANDS, build_parser, command_in, command_module

from herschik.errors import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    UsageError,
    exit_code_for,
    one_line,
)
from herschik.i18n import set_process_language, use_language

__all__ = ["main"]  # exit codes and errors: herschik.errors


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``herschik`` command; returns the exit code.

    Exit codes are decided in one place, :func:`herschik.errors.exit_code_for`: 2 for bad
    input and the environment's problems (one line on stderr), 3 for bugs; 130 when stopped by
    SIGINT or SIGTERM; a closed output pipe ends quietly (141, like a tool killed by SIGPIPE).

    As the program's entry point (``argv`` None), an interrupted run ends with
    ``os._exit(130)`` once everything is unwound and flushed: HiGHS' C++ threads abort a
    normal interpreter shutdown after an interrupted solve (std::terminate, exit 134).
    """
    try:
        code = _main(argv)
        if argv is None:
            # The result is complete. The interpreter's shutdown resets Python-level handlers
            # to the default, so a SIGTERM then killed a finished run (-15, seen in CI); an
            # ignored signal stays ignored through the shutdown (on every thread).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except KeyboardInterrupt:  # in the instant between the command's end and the ignore
        code = EXIT_INTERRUPTED
    # Any interrupt of the program, not only one inside HiGHS: a signal that lands between
    # solver calls also leaves solver threads running, and the interpreter's shutdown then
    # re-raises KeyboardInterrupt (exit -2) or aborts (tests/faults/test_faults.py).
    if argv is None and code == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(EXIT_INTERRUPTED)
    return code


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(command_in(argv)).parse_args(argv)
    except UsageError as error:
        print(f"herschik: error: {one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # SIGTERM unwinds like Ctrl-C, so staged result folders are removed, never left torn.
    _INTERRUPTS_RECEIVED.clear()
    signal.signal(signal.SIGTERM, _raise_interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _raise_interrupt)
    try:
        set_process_language(getattr(args, "lang", None))  # threads write in it too
        with use_language(getattr(args, "lang", None)):
            code = getattr(command_module(args.command), COMMANDS[args.command][1])(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at exit
        return code
    except KeyboardInterrupt as interrupt:
        _release_solver_threads()
        print(f"herschik: {one_line(interrupt) if str(interrupt) else 'interrupted'}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as error:  # every failure becomes a one-line message
        if _INTERRUPTS_RECEIVED:
            # The interrupt landed inside code that turned it into another error (a C
            # extension being imported reports "ImportError: initialization failed").
            _release_solver_threads()
            print("herschik: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if getattr(args, "debug", False):
            traceback.print_exc()
        code = exit_code_for(error)
        if code == EXIT_BAD_INPUT:
            print(f"herschik: error: {one_line(error)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(
            f"herschik: internal error: {type(error).__name__}: {one_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _release_solver_threads() -> None:
    if "herschik.optimiser.backends" in sys.modules:  # a solve ran in this process
        # not at the top: backends loads highspy, which `herschik --help` must not pay for
        from herschik.optimiser.backends import release_solver_threads

        release_solver_threads()


_INTERRUPTS_RECEIVED: list[int] = []


def _raise_interrupt(signum: int, frame: Any) -> None:
    _INTERRUPTS_RECEIVED.append(signum)
    raise KeyboardInterrupt

