"""Numerical faults of the DSO's LPs: error kinds, input checks, infeasibility naming.

Every DSO failure raises :class:`~gridlayers.dso.offer_blocks.InfeasibleDSOError` (the
agent's fallbacks catch that class); the subclasses here tell it which fault it was
(``kind``, an ``event.kind`` of :data:`gridlayers.numerics.FAULT_KINDS`) and whether the
soft-limit fallback can help (``soft_fallback``): limit slack cures an infeasible LP but
neither bad input data nor a solver out of time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.numerics import (
    BAD_COEFFICIENT,
    DSO_INFEASIBLE,
    FEEDER_FAMILIES,
    SOLVER_TIME_LIMIT,
    check_injections,
    diagnose_infeasibility,
)

if TYPE_CHECKING:
    import pandas as pd

    from gridlayers.dso.lindistflow import LinDistFlowFeeder

#: pyomo component of the DSO models -> constraint family named in fault messages.
FAMILIES = FEEDER_FAMILIES


class DSOFaultError(InfeasibleDSOError):
    """A DSO LP failed; ``kind`` names the fault, ``soft_fallback`` whether slack helps."""

    kind = DSO_INFEASIBLE
    soft_fallback = True


class DSOBadCoefficientError(DSOFaultError):
    """A non-finite or extreme number would have entered the DSO's model (rejected)."""

    kind = BAD_COEFFICIENT
    soft_fallback = False


class DSOTimeLimitError(DSOFaultError):
    """HiGHS hit its time limit on a DSO LP (no optimal, hence no trusted, dispatch)."""

    kind = SOLVER_TIME_LIMIT
    soft_fallback = False


def fault_kind(exc: BaseException) -> str:
    """Return the ``event.kind`` of a DSO failure (``dso_infeasible`` unless more specific)."""
    return getattr(exc, "kind", DSO_INFEASIBLE)


def soft_fallback_helps(exc: BaseException) -> bool:
    """Whether the soft-limit fallback can cure ``exc`` (not for bad data or time-outs)."""
    return getattr(exc, "soft_fallback", True)


def check_fixed_injections(
    feeder: LinDistFlowFeeder, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series
) -> None:
    """Raise :class:`DSOBadCoefficientError` for a non-finite or extreme fixed injection.

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The LDA's feeder (names the balance row each bus enters).
    p_fixed_mw, q_fixed_mvar : pandas.Series
        Forecast uncontrolled injection per pandapower bus (MW, Mvar).

    Notes
    -----
    One vectorised comparison per Series; the message names the row, e.g.
    ``"DSO input p_fixed_mw: non-finite or extreme value in row 'feeder.PBalance[17]'
    (nan)"``.

    """
    node = feeder.bus_node_bus
    for what, values, row in (
        ("p_fixed_mw", p_fixed_mw, "PBalance"),
        ("q_fixed_mvar", q_fixed_mvar, "QBalance"),
    ):
        try:
            check_injections(
                f"DSO input {what}",
                values,
                lambda bus, row=row: f"row 'feeder.{row}[{node.get(int(bus), bus)}]'",
            )
        except ValueError as exc:
            raise DSOBadCoefficientError(str(exc)) from exc


def diagnose(solver: Any) -> str:
    """Name the constraint families an infeasible DSO LP must relax (elastic re-solve)."""
    return diagnose_infeasibility(solver, FAMILIES)


def named_failure(exc: BaseException, solver: Any) -> str:
    """``str(exc)`` plus the conflicting constraint families if the LP was infeasible."""
    if "Infeasible" not in str(exc) and "nfeasible" not in str(exc):
        return str(exc)
    return f"{exc}; conflicting constraints: {diagnose(solver)}"
