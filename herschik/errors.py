"""One error hierarchy, mapped once to the CLI's exit codes.

Every problem that is the user's or the environment's (bad data, a bad scenario, a bad flag,
an unknown region, an unusable output path, a full disk, no network) is a
:class:`HerschikError` (or an ``OSError``) and exits 2 with one line; everything else is a
bug and exits 3. :func:`exit_code_for` is the only place that decides (for a finished solve,
``herschik.optimiser.status.exit_code_for_status`` maps its status to 0, 1 or 4).

This module imports nothing of the project, so every layer (geo, optimiser, scenarios) can
raise these errors.
"""

from __future__ import annotations

EXIT_OK, EXIT_INFEASIBLE, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3
#: The time limit ran out before any feasible solution was found (feasibility undecided).
EXIT_TIME_LIMIT_NO_SOLUTION = 4
#: A run stopped by SIGINT/SIGTERM (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130
#: Output pipe closed by the reader (``herschik regions --json | head -1``): 128 + SIGPIPE.
EXIT_BROKEN_PIPE = 141

__all__ = [
    "DataError",
    "EnvironmentProblem",
    "HerschikError",
    "OutputError",
    "ScenarioError",
    "SolverError",
    "UnknownRegionError",
    "UsageError",
    "exit_code_for",
    "one_line",
]


class HerschikError(Exception):
    """Base of herschik's own errors. ``exit_code``: what the CLI exits with."""

    exit_code = EXIT_BAD_INPUT


class UsageError(HerschikError):
    """A bad flag, flag combination or argument."""


class UnknownRegionError(UsageError):
    """A region id that the dataset does not have."""


class OutputError(HerschikError):
    """An output path that herschik must not write: a device, a FIFO, a folder it did not
    write, or one that another herschik process is writing."""


class EnvironmentProblem(HerschikError):
    """The environment, not the input: disk full, read-only filesystem, no internet, an
    unreachable Dask scheduler."""


class DataError(HerschikError, ValueError):
    """A problem in a dataset, located by file, 1-based data row and field.

    ``str(error)`` is one line, e.g. ``sites.csv row 12, field x: not a number ('abc')``.
    """

    def __init__(self, file: str, row: int | None, field: str | None, message: str) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.field is not None:
            where += ("," if self.row is not None else "") + f" field {self.field}"
        return f"{where}: {self.message}"

    def __reduce__(self) -> tuple[object, ...]:  # picklable across process pools
        return (type(self), (self.file, self.row, self.field, self.message))


class ScenarioError(HerschikError, ValueError):
    """A scenario file (or override) is invalid. ``str()`` is one line: ``file: field: message``."""

    def __init__(self, file: object, field: str, message: str) -> None:
        self.file = str(file)
        self.field = field
        self.message = " ".join(str(message).split())  # one line, whatever a parser said
        super().__init__(f"{self.file}: {field}: {self.message}")

    def __reduce__(self) -> tuple[object, ...]:  # picklable across process pools
        return (type(self), (self.file, self.field, self.message))


class SolverError(HerschikError):
    """The MIP solver failed in a way no input explains (a bug or a broken install)."""

    exit_code = EXIT_INTERNAL


def exit_code_for(error: BaseException) -> int:
    """The exit code of a failure: 2 for input or environment problems, 3 for bugs."""
    if isinstance(error, HerschikError):
        return error.exit_code
    # pydantic (about 0.03 s) is not imported at the top: this module is on the path of
    # `herschik --help`, and a ValidationError exists only where pydantic is already loaded
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - pydantic is a dependency
        ValidationError = ()  # type: ignore[assignment,misc]
    if isinstance(error, ValidationError):
        return EXIT_BAD_INPUT
    if isinstance(error, (ConnectionError, TimeoutError)):
        return EXIT_BAD_INPUT
    if isinstance(error, OSError):
        # Disk full, read-only, permissions, no network (socket and requests errors are
        # OSErrors too, often without an errno): the environment's, not a bug.
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def one_line(error: BaseException) -> str:
    """The error's message on one line (file and field first where the error knows them)."""
    try:  # not at the top, as in exit_code_for
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover
        ValidationError = ()  # type: ignore[assignment,misc]
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    if isinstance(error, OSError) and error.strerror and not isinstance(error, HerschikError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__
