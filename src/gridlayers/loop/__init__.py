"""Operations-to-planning feedback loop and DER plan validation (docs/loop.md).

:func:`run_loop` plans, co-simulates the plan under one paradigm, measures per LDA what
operation delivered (:mod:`gridlayers.loop.measure`), applies a damped update to the
planner's LDA parameters (:mod:`gridlayers.loop.update`) and re-plans until the plan
settles. :func:`validate_plan` co-simulates a given plan's DER and reports interface
shortfalls in the hours the plan relied on DER.
"""

from importlib import import_module
from typing import Any

from gridlayers.loop.config import LoopConfig

#: Lazily imported names (the scenario schema imports :class:`LoopConfig` from here, and
#: the loop itself imports the schema).
_LAZY = {
    "LOOP_PARADIGMS": "gridlayers.loop.run",
    "LoopError": "gridlayers.loop.run",
    "PlanningLoop": "gridlayers.loop.run",
    "run_loop": "gridlayers.loop.run",
    "PlanFileError": "gridlayers.loop.validate",
    "validate_plan": "gridlayers.loop.validate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    msg = f"module 'gridlayers.loop' has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "LOOP_PARADIGMS",
    "LoopConfig",
    "LoopError",
    "PlanFileError",
    "PlanningLoop",
    "run_loop",
    "validate_plan",
]
