"""Report of a run folder: figures (matplotlib, Agg) in one self-contained HTML file.

:func:`write_report` reads a run folder with :func:`gridlayers.results.load` and draws
the figures of :mod:`gridlayers.report.market` (costs, payments, interfaces, LMPs,
computation), :mod:`gridlayers.report.grid` (DLMPs, voltages, violations, DER) and
:mod:`gridlayers.report.planning` (capacity mix, loop convergence, plans per paradigm).
"""

from gridlayers.report.build import OPERATION, PARADIGM_PLANS, PLANNING, Report, write_report

__all__ = ["OPERATION", "PARADIGM_PLANS", "PLANNING", "Report", "write_report"]
