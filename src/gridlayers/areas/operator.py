r"""The operator of a sub-area: a :class:`~gridlayers.dso.operator.DSOOperator` with PCC limits.

A sub-area (microgrid, building) is operated exactly like an LDA by its DSO: the same
LinDistFlow dispatch model, virtual resource and disaggregation, built on the sub-area's
own network (:func:`gridlayers.areas.topology.subarea_net`, rooted at its PCC). The
only addition is the sub-area's internal limit at its PCC, known only to its operator:

.. math::

    -\overline{I} \le P \le \overline{E},

``P`` the net export at the PCC (``InterfaceP``, MW), ``\overline I`` = ``max_import_mw``
and ``\overline E`` = ``max_export_mw``. In the hard-limit model it is one more hard row
(``PccLimit``), so the virtual resource's range never exceeds it and every
disaggregation keeps it (in the loss-linearised model).

If no dispatch keeps it (e.g. the firm PV alone exports more than ``\overline E``), the
hard model is infeasible and the DSO's **soft-limit fallback** applies to it like to the
feeder's voltage and thermal limits: in the soft model the limit has non-negative slack
``PccSlack["import"|"export"]`` (MW) priced at ``slack_penalty_usd_per_mwh`` per MWh
(``PccSlackCost``, in ``MinSlack`` and ``DispatchCost``), capped at the least violation
while the virtual resource is built. The slack is reported as ``pcc_mw`` in the results'
``slack`` (with the feeder's, :func:`gridlayers.dso.opf.slack_report`; ``mw_equivalent``
and ``cost_usd_per_h`` include it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.operator import SLACK_CAP_TOL_MVA, DSOOperator
from gridlayers.dso.opf import SLACK_TOL_MVA

#: Sides of the PCC limit's slack in the soft-limit model (MW each).
PCC_SIDES = ("import", "export")


class SubAreaOperator(DSOOperator):
    """A DSO operator of a sub-area, with an import and export limit at its PCC.

    Parameters
    ----------
    feeder : LinDistFlowFeeder
        The sub-area's own linear model (root = PCC bus).
    devices : mapping of str to int
        Children (device ids and child areas' pseudo-devices) -> bus.
    max_import_mw, max_export_mw : float or None
        Limit on the net import / export at the PCC (MW, >= 0); ``None``: unlimited.
    **params
        Further :class:`~gridlayers.dso.operator.DSOOperator` keywords.

    """

    def __init__(
        self,
        feeder: LinDistFlowFeeder,
        devices: Mapping[str, int],
        *,
        max_import_mw: float | None = None,
        max_export_mw: float | None = None,
        **params: Any,
    ) -> None:
        for name, value in (("max_import_mw", max_import_mw), ("max_export_mw", max_export_mw)):
            if value is not None and not value >= 0.0:
                msg = f"{name} must be >= 0 or None, got {value}"
                raise ValueError(msg)
        self.max_import_mw = max_import_mw
        self.max_export_mw = max_export_mw
        super().__init__(feeder, devices, **params)

    def _build(self, soft: bool = False) -> pyo.ConcreteModel:
        """Build the DSO model (see the base class) plus the PCC limit (module notes)."""
        m = super()._build(soft)
        p_int = m.feeder.InterfaceP
        lo = None if self.max_import_mw is None else -float(self.max_import_mw)
        hi = None if self.max_export_mw is None else float(self.max_export_mw)
        if lo is None and hi is None:
            return m
        if not soft:
            m.PccLimit = pyo.Constraint(expr=pyo.inequality(lo, p_int, hi), doc="MW")
            return m
        sides = [side for side, limit in zip(PCC_SIDES, (lo, hi), strict=True) if limit is not None]
        m.PccSlack = pyo.Var(sides, within=pyo.NonNegativeReals, doc="MW")
        if lo is not None:
            m.PccImportLimit = pyo.Constraint(expr=p_int >= lo - m.PccSlack["import"])
        if hi is not None:
            m.PccExportLimit = pyo.Constraint(expr=p_int <= hi + m.PccSlack["export"])
        m.PccSlackCost = pyo.Expression(
            expr=float(self.slack_penalty_usd_per_mwh) * sum(m.PccSlack.values()), doc="$/h"
        )
        m.MinSlack.set_value(m.MinSlack.expr + m.PccSlackCost)
        m.DispatchCost.set_value(m.DispatchCost.expr + m.PccSlackCost)
        return m

    def _pcc_slack(self) -> list:
        """Return the active model's PCC slack variables (none on the hard model)."""
        slack = getattr(self.model, "PccSlack", None)
        return [] if slack is None else list(slack.values())

    def _least_violation(self, loosen: float = 1.0) -> dict[str, float | int]:
        """Cap the feeder's slack (base class) and the PCC slack at the least violation."""
        report = super()._least_violation(loosen)
        caps = [
            (v, 0.0, max(pyo.value(v), 0.0) + loosen * SLACK_CAP_TOL_MVA) for v in self._pcc_slack()
        ]
        self._lp.set_bounds_many(caps)
        return self._with_pcc(report)

    def _release_slack(self) -> None:
        """Remove the least-violation caps, the PCC slack's too."""
        super()._release_slack()
        self._lp.set_bounds_many([(v, 0.0, None) for v in self._pcc_slack()])

    def _slack_report(self) -> dict[str, float | int] | None:
        """Slack of the last soft solve (base class) plus ``pcc_mw`` (MW)."""
        report = super()._slack_report()
        return None if report is None else self._with_pcc(report)

    def _with_pcc(self, report: dict[str, float | int]) -> dict[str, float | int]:
        """Add the PCC slack (MW, below ``SLACK_TOL_MVA`` counted as 0) to a slack report."""
        pcc = sum(max(float(pyo.value(v)), 0.0) for v in self._pcc_slack())
        pcc = pcc if pcc > SLACK_TOL_MVA else 0.0
        penalty = float(self.slack_penalty_usd_per_mwh or 0.0)
        return {
            **report,
            "pcc_mw": pcc,
            "mw_equivalent": float(report["mw_equivalent"]) + pcc,
            "cost_usd_per_h": float(report["cost_usd_per_h"]) + penalty * pcc,
        }

    def set_root_voltage(self, vm_pu: float) -> None:
        """Hold the PCC (the model's root) at ``vm_pu`` (pu), the parent's voltage there.

        Updates the root-voltage Param of the built model(s) in place and the linear
        model's own power flows (operating points).
        """
        vm = float(vm_pu)
        if vm == self.feeder.network.vm_root_pu:
            return
        self.feeder.network = replace(self.feeder.network, vm_root_pu=vm)
        models = [self.model] + ([self._soft[0]] if self._soft is not None else [])
        for model in models:
            model.feeder.vm_root_pu.set_value(vm)
        self._params_changed = True


def bus_voltage_pu(feeder: LinDistFlowFeeder, point, bus: int) -> float:  # noqa: ANN001
    """Return the voltage magnitude (pu) of pandapower ``bus`` at an operating point."""
    node = feeder.node_index[feeder.bus_node_bus[int(bus)]]
    return float(np.sqrt(point.w_pu[node]))
