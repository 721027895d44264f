"""Conventions shared by every part of gridlayers (one place, so they cannot drift).

Sign convention
---------------
*Injection positive.* Every power quantity named ``p_mw``/``q_mvar`` in gridlayers'
own API is a net injection into the network: generation, battery discharge and an
LDA exporting to transmission are positive; load, battery charging and an LDA
importing from transmission are negative. The pandapower convention (loads
positive in ``net.load``) is converted only inside :mod:`gridlayers.grid` and
:mod:`gridlayers.market`, where pandapower tables are read or written.

Exception: an LDA's *interface flow* as measured by the feeder simulator is
reported as ``p_import_mw`` (withdrawal from the transmission bus, positive when
the LDA draws power), because that is how it enters the TSO clearing (as load).

Units
-----
Names carry unit suffixes: ``_mw``, ``_mvar``, ``_mwh``, ``_pu``, ``_percent``,
``_usd``, ``_usd_per_mwh``, ``_min`` (minutes), ``_s`` (seconds), ``_h`` (hours).
Money is US dollars (pandapower's ``poly_cost`` values are read as $/MWh).
mosaik attributes use bracketed units: ``"P[MW]"``, ``"Vm[pu]"``.

Time base
---------
A run has a start timestamp and a fixed interval length in minutes. mosaik time
is in seconds (``time_resolution=1``); interval ``k`` starts at mosaik time
``k * interval_min * 60``.
"""

from __future__ import annotations

SECONDS_PER_MINUTE = 60
MINUTES_PER_HOUR = 60

#: Default voltage band (pu) used to count voltage violations.
DEFAULT_VM_MIN_PU = 0.95
DEFAULT_VM_MAX_PU = 1.05
#: Default thermal limit (percent of rating) used to count loading violations.
DEFAULT_MAX_LOADING_PERCENT = 100.0


def interval_hours(interval_min: float) -> float:
    """Return the length of an interval in hours.

    Parameters
    ----------
    interval_min : float
        Interval length in minutes.

    Returns
    -------
    float
        Interval length in hours (MW times this gives MWh).

    """
    return interval_min / MINUTES_PER_HOUR


def check_unique_names(names: list[str], what: str = "LDA names") -> None:
    """Raise ``ValueError`` naming the duplicates if ``names`` repeat one (for validators)."""
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        msg = f"{what} must be unique, found duplicates {dupes}"
        raise ValueError(msg)
