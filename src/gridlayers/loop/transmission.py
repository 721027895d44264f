"""The transmission system of one co-simulated planner day.

Two rules, both for scenarios whose transmission is the planner's ISO-NE system
(``docs/reference-study.md``):

* a transmission ``load_profile: isone8_day<x>`` is replaced by ``isone8_day<d>`` for
  planner day ``d``, so the bulk load follows the planner's own load of the day it
  co-simulates;
* with ``loop.planned_transmission: true`` each day is co-simulated on the **planned**
  system: :func:`gridlayers.grid.isone_net.build_isone8_net` with the fleet of the
  planner's last epoch, the plan's new capacity (:func:`~gridlayers.grid.isone_net.add_plan`,
  wind and PV at the day's mean availability) and the zones' peak loads grown to the
  last epoch's final year, ``(1 + g)^(ye - 1)`` as the planner grows demand (the
  scenario's ``load_scaling`` is replaced by 1: the net carries the growth). The net is
  written as pandapower JSON next to the day's results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandapower as pp

from gridlayers.grid.isone_net import build_isone8_net, planner_profile_day
from gridlayers.planner.timescale import end_year_index
from gridlayers.scenarios.schema import Scenario, TransmissionConfig


def planned_net_file(out_dir: Path, day: int) -> Path:
    """Return where the planned net of planner day ``day`` is written."""
    return out_dir / f"isone8-planned-day{day}.json"


def day_transmission(
    scenario: Scenario, plan: dict[str, Any] | None, day: int, out_dir: Path
) -> TransmissionConfig:
    """Return the transmission section for co-simulating planner day ``day``.

    Parameters
    ----------
    scenario : Scenario
        Loop scenario (``planner`` and ``loop`` sections).
    plan : dict, optional
        The plan summary to co-simulate (needed with ``loop.planned_transmission``).
    day : int
        Planner representative day.
    out_dir : pathlib.Path
        Folder of the round; the planned net is written there.

    """
    tr = scenario.transmission
    update: dict[str, Any] = {}
    if planner_profile_day(tr.load_profile) is not None:
        update["load_profile"] = f"isone8_day{day}"
    if scenario.loop is not None and scenario.loop.planned_transmission:
        if plan is None:
            msg = "planned_transmission needs a plan"
            raise ValueError(msg)
        cfg = scenario.planner
        epoch = cfg.n_epochs
        growth = (1.0 + cfg.load_growth_per_year) ** (end_year_index(cfg, epoch) - 1)
        net = build_isone8_net(
            cfg.data_dir, epoch=epoch, plan=plan, day=day, load_scaling=growth, planner=cfg
        )
        path = planned_net_file(out_dir, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pp.to_json(net, str(path))
        update.update(json_path=path.resolve(), case=None, load_scaling=1.0)
    return tr.model_copy(update=update)
