"""The physics layer of one LDA: AC power flow on its pandapower feeder every interval.

The network is prepared once; each interval only supplies the element set-points
(``p_mw``/``q_mvar`` of loads, static generators and storage) and re-runs
Newton–Raphson from the previous solution. By default the lean solver of
:mod:`gridlayers.grid.acpf` does this on pandapower's own admittance model (about
1 ms per MV feeder step, agreeing with ``runpp`` to 1e-8 pu); a network it does not
model (voltage-controlled generators, voltage-dependent loads) runs through
pandapower's ``runpp`` with ``recycle`` instead. A power flow that does not converge
is retried from a flat start with more iterations; if that fails too, the interval
is flagged as non-converged and the run goes on.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd

from gridlayers.grid.acpf import ACPowerFlow, ACSolution, UnsupportedNetwork
from gridlayers.scenarios.schema import LimitsConfig

log = logging.getLogger(__name__)

_RECYCLE = {"bus_pq": True, "trafo": False, "gen": False}


@dataclass(frozen=True)
class FeederResult:
    """What the physics layer reports for one feeder and interval.

    Attributes
    ----------
    converged : bool
        Whether an AC power flow solution was found (after the flat-start retry).
    retried : bool
        Whether the flat-start retry was needed.
    p_import_mw, q_import_mvar : float
        Realised flow from the transmission bus into the LDA (positive: the LDA draws
        power). If the power flow failed, the lossless estimate (load minus generation).
    losses_mw : float
        Active losses in lines and transformers (NaN if not converged).
    vm_pu : Series
        Voltage magnitude per bus (indexed like ``net.bus``; NaN if not converged or isolated).
    line_loading_percent, trafo_loading_percent : Series
        Loading per line / transformer in percent of rating.
    line_p_from_mw, line_q_from_mvar : ndarray
        Flow into each line at its from bus, MW / Mvar, per ``net.line`` row
        (pandapower's ``res_line.p_from_mw``/``q_from_mvar``; NaN if not converged).
    trafo_p_hv_mw, trafo_q_hv_mvar : ndarray
        Flow into each transformer at its high-voltage bus, MW / Mvar, per ``net.trafo``
        row (pandapower's ``res_trafo.p_hv_mw``/``q_hv_mvar``; NaN if not converged).
    vm_min_pu, vm_max_pu, max_loading_percent : float
        Extremes over the feeder (NaN if not converged).
    voltage_violations, thermal_violations : int
        Number of buses outside the voltage band / branches above the loading limit.

    """

    converged: bool
    retried: bool
    p_import_mw: float
    q_import_mvar: float
    losses_mw: float
    vm_pu: pd.Series
    line_loading_percent: pd.Series
    trafo_loading_percent: pd.Series
    vm_min_pu: float
    vm_max_pu: float
    max_loading_percent: float
    voltage_violations: int
    thermal_violations: int
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray


class Feeder:
    """AC power flow of one LDA's feeder, prepared once and re-run every interval.

    Parameters
    ----------
    net : pandapowerNet
        The feeder. It must have exactly one in-service ``ext_grid``: the T–D interface.
        The feeder keeps its own deep copy.
    limits : LimitsConfig
        Voltage band (pu) and loading limit (%) used to count violations.
    backend : {"lean", "pandapower"}
        ``lean`` (default): :class:`~gridlayers.grid.acpf.ACPowerFlow`, falling back to
        pandapower for networks it does not model; ``pandapower``: always ``runpp``.

    """

    def __init__(self, net: pp.pandapowerNet, limits: LimitsConfig, backend: str = "lean") -> None:
        self.net = copy.deepcopy(net)
        self.limits = limits
        ext = self.net.ext_grid[self.net.ext_grid.in_service]
        if len(ext) != 1:
            msg = (
                f"a feeder needs exactly one in-service ext_grid (its interface), found {len(ext)}"
            )
            raise ValueError(msg)
        self._ext_index = ext.index[0]
        self._warm = False
        self._lean: ACPowerFlow | None = None
        if backend == "lean":
            try:
                self._lean = ACPowerFlow(self.net)
            except (UnsupportedNetwork, pp.LoadflowNotConverged) as exc:
                log.info("lean AC power flow not used (%s); using pandapower runpp", exc)
        elif backend != "pandapower":
            msg = f"unknown power-flow backend {backend!r}; known: lean, pandapower"
            raise ValueError(msg)

    def run(
        self,
        load_p_mw: pd.Series | np.ndarray,
        load_q_mvar: pd.Series | np.ndarray,
        sgen_p_mw: pd.Series | np.ndarray,
        storage_p_mw: pd.Series | np.ndarray | None = None,
    ) -> FeederResult:
        """Apply one interval's set-points and solve the AC power flow.

        Parameters
        ----------
        load_p_mw, load_q_mvar : Series or ndarray
            Per ``net.load`` row, MW / Mvar, load positive (pandapower convention).
        sgen_p_mw : Series or ndarray
            Per ``net.sgen`` row, MW, generation positive.
        storage_p_mw : Series or ndarray, optional
            Per ``net.storage`` row, MW, charging positive (pandapower convention).

        Returns
        -------
        FeederResult

        """
        net = self.net  # holds the interval's set-points with either backend
        net.load["p_mw"] = np.asarray(load_p_mw, dtype=float)
        net.load["q_mvar"] = np.asarray(load_q_mvar, dtype=float)
        net.sgen["p_mw"] = np.asarray(sgen_p_mw, dtype=float)
        if storage_p_mw is not None:
            net.storage["p_mw"] = np.asarray(storage_p_mw, dtype=float)
        if self._lean is not None:
            return self._run_lean()
        converged, retried = self._solve()
        return self._result(converged, retried)

    def _run_lean(self) -> FeederResult:
        net = self.net
        args = [net.load.p_mw.to_numpy(), net.load.q_mvar.to_numpy(), net.sgen.p_mw.to_numpy()]
        storage = net.storage.p_mw.to_numpy()
        sol = self._lean.solve(*args, storage)
        retried = not sol.converged
        if retried:
            log.warning("power flow did not converge; retrying from a flat start")
            sol = self._lean.solve(*args, storage, flat_start=True, max_iteration=50)
        if not sol.converged:
            return self._result(False, retried)  # the lossless estimate from the net
        return self._lean_result(sol, retried)

    def _lean_result(self, sol: ACSolution, retried: bool) -> FeederResult:
        return self._converged(
            retried,
            sol.ext_grid_p_mw,
            sol.ext_grid_q_mvar,
            float(sol.line_pl_mw.sum() + sol.trafo_pl_mw.sum()),
            sol.vm_pu,
            sol.line_loading_percent,
            sol.trafo_loading_percent,
            (sol.line_p_from_mw, sol.line_q_from_mvar, sol.trafo_p_hv_mw, sol.trafo_q_hv_mvar),
        )

    def _solve(self) -> tuple[bool, bool]:
        net = self.net
        try:
            if self._warm:
                pp.runpp(net, recycle=_RECYCLE)
            else:
                pp.runpp(net, init="auto", numba=True)
            self._warm = True
            return True, False
        except pp.LoadflowNotConverged:
            log.warning("power flow did not converge; retrying from a flat start")
        try:
            # "dc" rather than "flat": a flat start puts every angle at 0 deg across the
            # SimBench transformers' 150 deg phase shift and never converges; the DC power
            # flow's angles include the shift (3 iterations on the bundled feeders)
            pp.runpp(net, init="dc", max_iteration=50, numba=True)
            self._warm = True
            return True, True
        except pp.LoadflowNotConverged:
            self._warm = False  # the stored solution is not a valid starting point
            return False, True

    def _result(self, converged: bool, retried: bool) -> FeederResult:
        net = self.net
        if not converged:
            nan_bus = pd.Series(np.nan, index=net.bus.index)
            nan_line, nan_trafo = np.full(len(net.line), np.nan), np.full(len(net.trafo), np.nan)
            p_est = _in_service_sum(net, "load", "p_mw") - _in_service_sum(net, "sgen", "p_mw")
            p_est += _in_service_sum(net, "storage", "p_mw")
            q_est = _in_service_sum(net, "load", "q_mvar") - _in_service_sum(net, "sgen", "q_mvar")
            return FeederResult(
                False,
                retried,
                p_est,
                q_est,
                np.nan,
                nan_bus,
                pd.Series(np.nan, index=net.line.index),
                pd.Series(np.nan, index=net.trafo.index),
                np.nan,
                np.nan,
                np.nan,
                0,
                0,
                nan_line,
                nan_line,
                nan_trafo,
                nan_trafo,
            )
        return self._converged(
            retried,
            float(net.res_ext_grid.p_mw.at[self._ext_index]),
            float(net.res_ext_grid.q_mvar.at[self._ext_index]),
            float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
            net.res_bus.vm_pu.to_numpy(float),
            net.res_line.loading_percent.to_numpy(float),
            net.res_trafo.loading_percent.to_numpy(float),
            (
                net.res_line.p_from_mw.to_numpy(float),
                net.res_line.q_from_mvar.to_numpy(float),
                net.res_trafo.p_hv_mw.to_numpy(float),
                net.res_trafo.q_hv_mvar.to_numpy(float),
            ),
        )

    def _converged(
        self,
        retried: bool,
        p_mw: float,
        q_mvar: float,
        losses_mw: float,
        vm_pu: np.ndarray,
        line_loading: np.ndarray,
        trafo_loading: np.ndarray,
        flows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ) -> FeederResult:
        """Build a converged result from per-bus / per-branch arrays (net row order).

        ``flows`` are the line ``p_from_mw``, ``q_from_mvar`` and transformer ``p_hv_mw``,
        ``q_hv_mvar`` arrays.
        """
        net, lim = self.net, self.limits
        vm_valid = vm_pu[~np.isnan(vm_pu)]
        loadings = np.concatenate([line_loading, trafo_loading])
        loadings = loadings[~np.isnan(loadings)]
        return FeederResult(
            converged=True,
            retried=retried,
            p_import_mw=p_mw,
            q_import_mvar=q_mvar,
            losses_mw=losses_mw,
            vm_pu=pd.Series(vm_pu, index=net.bus.index, name="vm_pu"),
            line_loading_percent=pd.Series(line_loading, index=net.line.index),
            trafo_loading_percent=pd.Series(trafo_loading, index=net.trafo.index),
            vm_min_pu=float(vm_valid.min()),
            vm_max_pu=float(vm_valid.max()),
            max_loading_percent=float(loadings.max()) if len(loadings) else 0.0,
            voltage_violations=int(((vm_valid < lim.vm_min_pu) | (vm_valid > lim.vm_max_pu)).sum()),
            thermal_violations=int((loadings > lim.max_loading_percent).sum()),
            line_p_from_mw=flows[0],
            line_q_from_mvar=flows[1],
            trafo_p_hv_mw=flows[2],
            trafo_q_hv_mvar=flows[3],
        )


def _in_service_sum(net: pp.pandapowerNet, table: str, column: str) -> float:
    frame = net[table]
    if frame.empty:
        return 0.0
    return float((frame[column] * frame.scaling)[frame.in_service].sum())
