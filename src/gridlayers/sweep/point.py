"""One sweep point in a process of its own: ``python -m gridlayers.sweep.point FOLDER``.

:func:`gridlayers.sweep.execute.run_point` (the Dask task) writes the point's scenario
as JSON to ``FOLDER/point.scenario.json`` and starts this module in a child process.
The run then happens in that process's main thread, where the scenario's
``simulators.step_timeout_s`` watchdog works (a Dask task runs in a worker thread,
where it cannot), and a crash of the run (a segmentation fault in a solver, an
out-of-memory kill) ends the child, not the Dask worker. The child never imports code
that the scenario names: ``GRIDLAYERS_ALLOW_IMPORT`` is set to ``0`` before anything is
loaded.

The outcome is the run folder itself (``summary.json``, or ``error.log`` when the run
could not start); the exit code is 0 when the run completed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

#: The point's scenario (JSON-ready dict, paths absolute) in its folder.
SCENARIO_FILE = "point.scenario.json"


def main(folder: Path) -> int:
    """Validate, resolve and run the point in ``folder``; return the exit code."""
    from gridlayers.dso.strategies import ALLOW_IMPORT_ENV

    os.environ[ALLOW_IMPORT_ENV] = "0"  # a sweep never imports code a scenario names
    from gridlayers.runner import run_scenario
    from gridlayers.scenarios.resolve import resolve_scenario
    from gridlayers.scenarios.schema import Scenario
    from gridlayers.sweep.execute import quiet_worker

    quiet_worker()
    try:
        data = json.loads((folder / SCENARIO_FILE).read_text(encoding="utf-8"))
        sc = Scenario.model_validate(data)
        resolve_scenario(sc, folder / "scenario.resolved.yaml")
        outcome = run_scenario(sc, folder)
    except Exception:  # noqa: BLE001 - recorded in the folder; the parent reads it
        (folder / "error.log").write_text(traceback.format_exc())
        return 1
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
