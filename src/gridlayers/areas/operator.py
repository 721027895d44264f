r"""The operator of a sub-area: a :class:`~gridlayers.dso.operator.DSOOperator` with PCC limits.

A sub-area (microgrid, building) is operated exactly like an LDA by its DSO: the same
LinDistFlow dispatch model, virtual resource and disaggregation, built on the sub-area's
own network (:func:`gridlayers.areas.topology.subarea_net`, rooted at its PCC). The
only addition is the sub-area's internal limit at its PCC, known only to its operator:

.. math::

    -\overline{I} \le P \le \overline{E},

``P`` the net export at the PCC (``InterfaceP``, MW), ``\overline I`` = ``max_import_mw``
and ``\overline E`` = ``max_export_mw``. It is one more constraint of the model built
once (hard in both the hard- and the soft-limit model), so the virtual resource's range
never exceeds it and every disaggregation keeps it (in the loss-linearised model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pyomo.environ as pyo

from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.operator import DSOOperator


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
        """Build the DSO model (see the base class) plus the PCC limit row ``PccLimit``."""
        m = super()._build(soft)
        p_int = m.feeder.InterfaceP
        lo = None if self.max_import_mw is None else -float(self.max_import_mw)
        hi = None if self.max_export_mw is None else float(self.max_export_mw)
        if lo is not None or hi is not None:
            m.PccLimit = pyo.Constraint(expr=pyo.inequality(lo, p_int, hi), doc="MW")
        return m

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
