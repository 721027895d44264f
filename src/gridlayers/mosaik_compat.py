"""A fix to mosaik 3.6's progress tracking for simulators in other processes.

mosaik bounds how far an event-based simulator may progress by the next scheduled step
of each simulator that can trigger it (``advance_progress`` in ``mosaik.scheduler``).
While a simulator is *in* a step, that step has already left its schedule: if it runs in
another process, other simulators finish meanwhile and mosaik advances the progress of
its successors past the step's time, as if it could no longer trigger them. When its
outputs then arrive, the successor must step at a time it has already passed, and
mosaik stops with "cannot progress backwards". In-process simulators never show it
(their steps do not interleave); gridlayers' LDA partitions in subprocesses or served
with ``connect`` do.

:func:`install` replaces ``advance_progress`` with the same computation plus the step
each triggering ancestor is currently in. It is applied by :mod:`gridlayers.cosim` to
mosaik 3.6 only (checked against its source); other versions are left alone.
"""

from __future__ import annotations

import inspect
from typing import Any

import mosaik
import mosaik.scheduler as scheduler
from mosaik.tiered_time import TieredTime

#: mosaik versions whose ``advance_progress`` this module reproduces.
PATCHED_VERSIONS = ("3.6.",)
_ORIGINAL = scheduler.advance_progress


def advance_progress(sim: Any, world: Any) -> None:
    """Return nothing; mosaik 3.6's ``advance_progress`` plus ancestors' running steps."""
    pre_sim_induced_progress: list[TieredTime] = [
        distance.earliest_sum(time)
        for pre_sim, distance in sim.triggering_ancestors.items()
        for time in (
            *(pre_sim.next_steps[:1]),
            *((pre_sim.current_step,) if pre_sim.current_step else ()),
        )
    ]
    next_step_progress = [sim.next_steps[0]] if sim.next_steps else []
    current_step_prog = [sim.current_step] if sim.current_step else []
    if world.rt_factor:
        rt_passed = scheduler.perf_counter() - sim.rt_start
        rt_progress = [TieredTime(scheduler.ceil(rt_passed / world.rt_factor))]
    else:
        rt_progress = []
    new_progress = min(
        [
            *pre_sim_induced_progress,
            *next_step_progress,
            *current_step_prog,
            *rt_progress,
            TieredTime(world.until) + sim.from_world_time,
        ]
    )
    sim.progress.set(new_progress)
    sim.tqdm.update(new_progress.time - sim.tqdm.n)


def install() -> bool:
    """Patch ``mosaik.scheduler.advance_progress`` if this mosaik is known; return whether."""
    if not mosaik.__version__.startswith(PATCHED_VERSIONS):
        return False
    source = inspect.getsource(_ORIGINAL)
    if "pre_sim.next_steps[0]" not in source or "current_step_prog" not in source:
        return False  # not the function this module reproduces
    scheduler.advance_progress = advance_progress
    return True
