"""Console output of the long commands: progress bars, ``--quiet`` and ``-v/--verbose``.

``run``, ``compare``, ``plan``, ``loop`` and ``validate-plan`` take the same two
options, after the command name (``gridlayers run SCENARIO -q``):

default
    A progress bar on stderr while stderr is an interactive terminal (and ``loop``'s
    round-by-round status lines on stderr), the summary table and the paths written
    on stdout. Library chatter is off: mosaik's loguru and pandapower below ERROR,
    FutureWarning and DeprecationWarning, HiGHS's banner.
``--quiet`` / ``-q``
    For scripts: no progress bar, no tables, no status lines. stdout carries only
    the paths written (``results: PATH``, ``report: PATH``), stderr only errors.
``-v`` / ``--verbose``
    gridlayers' logging at INFO (phases, timings, files written), mosaik's loguru at
    INFO and Python warnings, all on stderr above the progress bar; the status lines
    become log lines. ``-vv`` goes to DEBUG (e.g. every Benders iteration of the
    planner).

stdout never carries the bar: a summary piped into a file is just the table and the
paths. ``--quiet`` with ``--verbose`` exits with code 2.
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

out = Console()
err = Console(stderr=True)

QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="No progress bar and no tables: print only the paths written, and errors.",
    ),
]
VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="Log to stderr: -v INFO (gridlayers, mosaik), -vv DEBUG.",
    ),
]

#: Library loggers kept at WARNING when gridlayers logs at INFO/DEBUG (they are chatty).
_CHATTY = ("pandapower", "numba", "matplotlib", "PIL", "pyomo")


class _ConsoleHandler(logging.Handler):
    """Write log records through :data:`err`, so they print above a live progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            err.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def _loguru_sink(message: Any) -> None:
    err.print(str(message).rstrip("\n"), markup=False, highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class Output:
    """How a command talks: ``quiet`` (paths and errors only) or ``verbose`` (0, 1, 2)."""

    quiet: bool = False
    verbose: int = 0

    def progress(self, *, counted: bool = True) -> Progress:
        """Return a progress bar on stderr, shown only on an interactive terminal.

        ``counted`` adds an ``M/N`` column (leave it out when the total is a guess).
        """
        columns = [TextColumn("{task.description}"), BarColumn()]
        if counted:
            columns.append(MofNCompleteColumn())
        columns.append(TimeElapsedColumn())
        return Progress(*columns, console=err, disable=self.quiet or not err.is_interactive)

    def table(self, table: Any) -> None:
        """Print a summary table on stdout unless quiet."""
        if not self.quiet:
            out.print(table)

    def status(self, message: str) -> None:
        """Print a status line on stderr, above a live bar (not when quiet; the log has it)."""
        if not self.quiet and not self.verbose:
            err.print(message, markup=False, highlight=False, soft_wrap=True)

    @staticmethod
    def path(label: str, path: Path) -> None:
        """Print ``label: path`` on stdout (always: scripts read these lines)."""
        out.print(f"{label}: {path}", markup=False, highlight=False, soft_wrap=True)


def setup_output(quiet: bool, verbose: int) -> Output:
    """Configure logging and warnings for a command; exit 2 on ``--quiet`` with ``-v``.

    Parameters
    ----------
    quiet : bool
        ``--quiet``: only errors reach stderr.
    verbose : int
        Number of ``-v``: 0 silences library chatter, 1 logs INFO, 2 or more DEBUG.

    Returns
    -------
    Output
        The mode, for the command's bar, tables and paths.

    """
    if quiet and verbose:
        err.print("error: --quiet and --verbose exclude each other", markup=False)
        raise typer.Exit(2)
    from loguru import logger

    logger.remove()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ConsoleHandler)]:
        root.removeHandler(handler)  # a second command in the same process starts afresh
    gridlayers_log = logging.getLogger("gridlayers")
    gridlayers_log.setLevel(logging.NOTSET)
    if verbose:
        level = "DEBUG" if verbose > 1 else "INFO"
        logger.add(_loguru_sink, level=level, format="{level}: {name}: {message}")
        handler = _ConsoleHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        gridlayers_log.setLevel(level)
        for name in _CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.captureWarnings(True)
        return Output(verbose=verbose)
    logger.add(sys.stderr, level="ERROR", format="{level}: {message}")
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if quiet:
        gridlayers_log.setLevel(logging.ERROR)
        warnings.simplefilter("ignore")
    return Output(quiet=quiet)


def swallow_highs_banner() -> None:
    """Keep HiGHS's one-time banner off stdout (log it at ``-vv``).

    highspy prints "Running HiGHS ..." to the process's stdout the first time a solver
    is created, before any option can switch it off; creating that first one here,
    with stdout captured, leaves the summary on stdout clean.
    """
    import io

    import highspy
    from pyomo.common.tee import capture_output

    banner = io.StringIO()
    with capture_output(banner, capture_fd=True):
        highspy.Highs()
    for line in banner.getvalue().splitlines():
        logging.getLogger(__name__).debug("%s", line)
