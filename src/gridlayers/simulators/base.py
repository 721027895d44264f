"""What every gridlayers mosaik simulator of a run shares: the scenario and the time base."""

from __future__ import annotations

from typing import Any

import mosaik_api_v3
from mosaik_api_v3.types import Meta


class RunSimulator(mosaik_api_v3.Simulator):
    """A mosaik simulator that takes the run's scenario, paradigm and run id in ``init``.

    Attributes set by :meth:`init`: ``_scenario`` (JSON-ready dict), ``_paradigm``,
    ``_run_id`` and ``_step`` (mosaik ticks per market interval).
    """

    def init(
        self,
        sid: str,
        time_resolution: float = 1.0,
        *,
        scenario: dict[str, Any],
        paradigm: str,
        run_id: str,
    ) -> Meta:
        """Take the scenario (JSON-ready dict), the paradigm and the run id."""
        self._scenario, self._paradigm, self._run_id = scenario, paradigm, run_id
        self._step = round(scenario["horizon"]["interval_min"] * 60 / time_resolution)
        self.setup()
        return self.meta

    def setup(self) -> None:
        """Prepare after :meth:`init` (override; the default does nothing)."""
