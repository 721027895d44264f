"""A lean Newton–Raphson AC power flow on a pandapower feeder's own admittance model.

pandapower's ``runpp`` spends most of its ~10 ms per feeder step outside the
Newton iterations: option handling, element-to-bus aggregation through pandas,
result tables. This solver asks pandapower once for the network model it would
use (``Ybus``, ``Yf``, ``Yt``, bus types, the bus lookup, after a first
``runpp``), then solves every step with numpy and SciPy only:

- bus injections are the fixed part of pandapower's own ``Sbus`` plus the element
  set-points of this step (loads, static generators, storage), summed per bus with
  a precomputed incidence matrix;
- Newton–Raphson in polar form on the PQ buses, warm-started from the previous
  solution, with a Jacobian assembled straight into a fixed sparsity pattern;
- branch flows, currents and loadings exactly as pandapower defines them
  (``results_branch``): current from apparent power over voltage, line loading
  against ``max_i_ka·df·parallel``, transformer loading against rated current.

It covers what a distribution feeder has: one slack (``ext_grid``), PQ buses,
lines, transformers, switches, constant-power loads. A network with voltage-
controlled generators or voltage-dependent loads is refused with
:class:`UnsupportedNetwork`, and the caller uses ``runpp``. Agreement with
``runpp`` is tested to 1e-8 pu on every bundled feeder (tests/test_acpf.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp
import scipy.sparse as sp
from scipy.sparse.linalg import splu

_SQRT3 = np.sqrt(3.0)
_ELEMENTS = ("load", "sgen", "storage")
_SIGN = {"load": -1.0, "sgen": 1.0, "storage": -1.0}  # injection = sign · set-point


class UnsupportedNetwork(ValueError):
    """The network has an element this solver does not model (use ``pp.runpp``)."""


@dataclass(frozen=True)
class ACSolution:
    """One solved step, in pandapower's units and conventions.

    Attributes
    ----------
    converged : bool
        Whether the mismatch fell below the tolerance.
    iterations : int
        Newton iterations used.
    vm_pu, va_degree : ndarray
        Per ``net.bus`` row (NaN for buses outside the solved network).
    ext_grid_p_mw, ext_grid_q_mvar : float
        Flow from the slack into the network (positive: the network draws power).
    line_loading_percent, trafo_loading_percent : ndarray
        Per ``net.line`` / ``net.trafo`` row, as pandapower's ``res_*.loading_percent``.
    line_pl_mw, trafo_pl_mw : ndarray
        Active losses per line / transformer, MW.
    line_p_from_mw, line_q_from_mvar : ndarray
        Flow into each line at its from bus, MW / Mvar (pandapower's
        ``res_line.p_from_mw``/``q_from_mvar``; 0 out of service).
    trafo_p_hv_mw, trafo_q_hv_mvar : ndarray
        Flow into each transformer at its high-voltage bus, MW / Mvar (pandapower's
        ``res_trafo.p_hv_mw``/``q_hv_mvar``; 0 out of service).

    """

    converged: bool
    iterations: int
    vm_pu: np.ndarray
    va_degree: np.ndarray
    ext_grid_p_mw: float
    ext_grid_q_mvar: float
    line_loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    line_pl_mw: np.ndarray
    trafo_pl_mw: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray


class ACPowerFlow:
    """Newton–Raphson AC power flow of one feeder, set up once, solved per step.

    Parameters
    ----------
    net : pandapowerNet
        The feeder, with exactly one in-service ``ext_grid``. It is solved once with
        ``runpp`` here (its ``res_*`` tables are overwritten) to obtain pandapower's
        network model; element set-points passed to :meth:`solve` replace the
        values in ``net`` from then on (``net`` itself is not changed again).
    tolerance_mva : float
        Largest bus power mismatch accepted, MVA.

    Raises
    ------
    UnsupportedNetwork
        For voltage-controlled generators, several slacks or voltage-dependent loads.

    """

    def __init__(self, net: pp.pandapowerNet, tolerance_mva: float = 1e-9) -> None:
        _check_supported(net)
        pp.runpp(net, init="auto", numba=True)
        ppci = net._ppc["internal"]
        self.base_mva = float(ppci["baseMVA"])
        self.tolerance_pu = tolerance_mva / self.base_mva
        ybus = sp.csr_matrix(ppci["Ybus"])
        self._ref = np.asarray(ppci["ref"], dtype=np.int64)
        if len(ppci["pv"]) or len(self._ref) != 1:
            raise UnsupportedNetwork("only one slack and PQ buses are supported")
        pq = np.asarray(ppci["pq"], dtype=np.int64)
        self._pq = pq
        self._ybus = ybus
        self._y_pp = ybus[pq][:, pq].tocsr()
        self._y_pp.sort_indices()
        self._y_pr = ybus[pq][:, self._ref].toarray().ravel()
        self._yf = sp.csr_matrix(ppci["Yf"])
        self._yt = sp.csr_matrix(ppci["Yt"])
        self._v = np.asarray(ppci["V"], dtype=complex).copy()
        self._v_start = self._v.copy()
        # flat start: the slack's magnitude at every bus, with the angles of the set-up
        # solution, which carry the transformers' phase shifts (150 degrees on the SimBench
        # HV/MV and MV/LV transformers: from 0 degrees everywhere Newton never converged,
        # so the retry of a failed power flow could not succeed)
        self._v_flat = np.abs(self._v[self._ref[0]]) * np.exp(1j * np.angle(self._v_start))
        self._jacobian_pattern()
        self._bus_maps(net, ppci)
        self._branch_maps(net, ppci)
        base = -(ppci["bus"][:, 2] + 1j * ppci["bus"][:, 3]) / self.base_mva  # PD, QD
        self._s_other = base - self._injections(*self._setpoints(net))

    # -- set-up ---------------------------------------------------------------------------

    def _bus_maps(self, net: pp.pandapowerNet, ppci: dict) -> None:
        lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
        n = ppci["bus"].shape[0]
        pp_bus = net.bus.index.to_numpy()
        idx = lookup[pp_bus]
        self._bus_valid = (idx >= 0) & (idx < n) & net.bus.in_service.to_numpy(bool)
        self._bus_ppci = np.where(self._bus_valid, idx, 0)
        self._incidence = {}
        for table in _ELEMENTS:
            frame = net[table]
            if frame.empty:
                continue
            b = lookup[frame.bus.to_numpy()]
            ok = frame.in_service.to_numpy(bool) & (b >= 0) & (b < n)
            weight = _SIGN[table] * frame.scaling.to_numpy(float) * ok / self.base_mva
            cols = np.arange(len(frame))
            self._incidence[table] = sp.csr_matrix(
                (weight[ok], (b[ok], cols[ok])), shape=(n, len(frame))
            )
        self._sgen_q = net.sgen.q_mvar.to_numpy(float).copy()
        self._storage_q = net.storage.q_mvar.to_numpy(float).copy()
        self._storage_p = net.storage.p_mw.to_numpy(float).copy()

    def _branch_maps(self, net: pp.pandapowerNet, ppci: dict) -> None:
        branch = ppci["branch"]
        self._f = branch[:, 0].real.astype(np.int64)
        self._t = branch[:, 1].real.astype(np.int64)
        base_kv = ppci["bus"][:, 9]
        self._kv_f, self._kv_t = base_kv[self._f], base_kv[self._t]
        in_service = np.asarray(ppci["branch_is"], dtype=bool)
        row = np.cumsum(in_service) - 1  # ppc row -> ppci row
        lookups = net._pd2ppc_lookups["branch"]
        self._rows = {}
        for table in ("line", "trafo"):
            if table not in lookups:
                self._rows[table] = (np.zeros(0, np.int64), np.zeros(0, bool))
                continue
            f, t = lookups[table]
            rows = np.arange(f, t)
            self._rows[table] = (np.where(in_service[rows], row[rows], 0), in_service[rows])
        line = net.line
        self._line_i_max = (line.max_i_ka * line.df * line.parallel).to_numpy(float)
        trafo = net.trafo
        self._trafo_vn = trafo[["vn_hv_kv", "vn_lv_kv"]].to_numpy(float)
        self._trafo_sn = trafo.sn_mva.to_numpy(float)
        self._trafo_derate = (trafo.parallel * trafo.df).to_numpy(float)

    def _jacobian_pattern(self) -> None:
        """Fix J's sparsity: the 2×2 block pattern of the PQ-PQ admittance matrix."""
        y = self._y_pp
        n = y.shape[0]
        rows = np.repeat(np.arange(n), np.diff(y.indptr))
        cols = y.indices
        if not np.all(y.diagonal() != 0):
            raise UnsupportedNetwork("a PQ bus has no admittance to ground or neighbours")
        self._rows_pp, self._cols_pp = rows, cols
        self._diag_pos = np.flatnonzero(rows == cols)
        r = np.concatenate([rows, rows, rows + n, rows + n])
        c = np.concatenate([cols, cols + n, cols, cols + n])
        order = np.lexsort((r, c))  # CSC: by column, then row
        self._j_order = order
        self._j_indices = r[order].astype(np.int32)
        self._j_indptr = np.searchsorted(c[order], np.arange(2 * n + 1)).astype(np.int32)
        self._j_shape = (2 * n, 2 * n)

    @staticmethod
    def _setpoints(net: pp.pandapowerNet) -> tuple:
        p = {t: net[t].p_mw.to_numpy(float) for t in _ELEMENTS}
        q = {t: net[t].q_mvar.to_numpy(float) for t in _ELEMENTS}
        return (p["load"], q["load"], p["sgen"], q["sgen"], p["storage"], q["storage"])

    def _injections(self, load_p, load_q, sgen_p, sgen_q, storage_p, storage_q) -> np.ndarray:
        s = np.zeros(len(self._v), dtype=complex)
        for table, p, q in (
            ("load", load_p, load_q),
            ("sgen", sgen_p, sgen_q),
            ("storage", storage_p, storage_q),
        ):
            if table in self._incidence:
                s += self._incidence[table] @ (np.asarray(p, float) + 1j * np.asarray(q, float))
        return s

    # -- one step -------------------------------------------------------------------------

    def solve(
        self,
        load_p_mw: np.ndarray,
        load_q_mvar: np.ndarray,
        sgen_p_mw: np.ndarray,
        storage_p_mw: np.ndarray | None = None,
        *,
        flat_start: bool = False,
        max_iteration: int = 10,
    ) -> ACSolution:
        """Solve one step.

        Parameters
        ----------
        load_p_mw, load_q_mvar : array
            Per ``net.load`` row, MW / Mvar (load positive), before ``scaling``.
        sgen_p_mw : array
            Per ``net.sgen`` row, MW (generation positive); reactive power stays as in
            the net given at set-up.
        storage_p_mw : array, optional
            Per ``net.storage`` row, MW (charging positive); default: as at set-up.
        flat_start : bool
            Start from the slack voltage magnitude at every bus (angles of the set-up
            solution, i.e. the transformers' phase shifts) instead of the last solution.
        max_iteration : int
            Newton iterations allowed.

        Returns
        -------
        ACSolution
            The last iterate; if it did not converge, the warm start is reset.

        """
        storage = self._storage_p if storage_p_mw is None else storage_p_mw
        s_bus = self._s_other + self._injections(
            load_p_mw, load_q_mvar, sgen_p_mw, self._sgen_q, storage, self._storage_q
        )
        v0 = self._v_flat if flat_start else self._v
        v, converged, iterations = self._newton(s_bus, v0.copy(), max_iteration)
        self._v = v if converged else self._v_start.copy()
        return self._solution(v, s_bus, converged, iterations)

    def _newton(self, s_bus: np.ndarray, v: np.ndarray, max_it: int) -> tuple:
        pq, y = self._pq, self._y_pp
        v_ref = v[self._ref[0]]
        s_pq = s_bus[pq]
        vp = v[pq]
        n = len(pq)
        for it in range(max_it + 1):
            current = y @ vp + self._y_pr * v_ref
            mis = vp * np.conj(current) - s_pq
            f = np.concatenate([mis.real, mis.imag])
            if np.max(np.abs(f)) < self.tolerance_pu:
                v[pq] = vp
                return v, True, it
            if it == max_it or not np.all(np.isfinite(f)):
                break
            vm = np.abs(vp)
            vn = vp / vm
            ri, ci, yd = self._rows_pp, self._cols_pp, y.data
            ds_dvm = vp[ri] * np.conj(yd * vn[ci])
            ds_dva = -1j * vp[ri] * np.conj(yd * vp[ci])
            ds_dvm[self._diag_pos] += np.conj(current) * vn
            ds_dva[self._diag_pos] += 1j * vp * np.conj(current)
            data = np.concatenate([ds_dva.real, ds_dvm.real, ds_dva.imag, ds_dvm.imag])
            jac = sp.csc_matrix(
                (data[self._j_order], self._j_indices, self._j_indptr), shape=self._j_shape
            )
            dx = splu(jac, permc_spec="MMD_AT_PLUS_A").solve(-f)
            va = np.angle(vp) + dx[:n]
            vm = vm + dx[n:]
            vp = vm * np.exp(1j * va)
        v[pq] = vp
        return v, False, it

    def _solution(self, v: np.ndarray, s_bus: np.ndarray, ok: bool, iterations: int) -> ACSolution:
        nan_bus = np.where(self._bus_valid, 0.0, np.nan)
        vm = np.abs(v)
        ref = self._ref[0]
        s_ref = v[ref] * np.conj(self._ybus[ref] @ v)[0] - s_bus[ref]
        sf = v[self._f] * np.conj(self._yf @ v) * self.base_mva
        st = v[self._t] * np.conj(self._yt @ v) * self.base_mva
        i_f = np.abs(sf) / (vm[self._f] * self._kv_f) / _SQRT3
        i_t = np.abs(st) / (vm[self._t] * self._kv_t) / _SQRT3
        loss = (sf + st).real
        loading, losses, flow = {}, {}, {}
        for table in ("line", "trafo"):
            rows, live = self._rows[table]
            # out of service: no current, loading NaN (as pandapower reports it)
            i_ft = np.where(live[:, None], np.column_stack([i_f[rows], i_t[rows]]), np.nan)
            losses[table] = np.where(live, loss[rows], 0.0)
            flow[table] = np.where(live, sf[rows], 0.0)  # from bus (a trafo's HV bus), MVA
            if table == "line":
                loading[table] = i_ft.max(axis=1) / self._line_i_max * 100.0
            else:
                rated = i_ft * self._trafo_vn * _SQRT3 / self._trafo_sn[:, None] * 100.0
                loading[table] = rated.max(axis=1) / self._trafo_derate
        return ACSolution(
            converged=ok,
            iterations=iterations,
            vm_pu=vm[self._bus_ppci] + nan_bus,
            va_degree=np.degrees(np.angle(v))[self._bus_ppci] + nan_bus,
            ext_grid_p_mw=float(s_ref.real * self.base_mva),
            ext_grid_q_mvar=float(s_ref.imag * self.base_mva),
            line_loading_percent=loading["line"],
            trafo_loading_percent=loading["trafo"],
            line_pl_mw=losses["line"],
            trafo_pl_mw=losses["trafo"],
            line_p_from_mw=flow["line"].real,
            line_q_from_mvar=flow["line"].imag,
            trafo_p_hv_mw=flow["trafo"].real,
            trafo_q_hv_mvar=flow["trafo"].imag,
        )


def _check_supported(net: pp.pandapowerNet) -> None:
    if len(net.ext_grid[net.ext_grid.in_service]) != 1:
        raise UnsupportedNetwork("exactly one in-service ext_grid is needed")
    for table in ("gen", "ward", "xward", "shunt", "impedance", "dcline", "trafo3w", "svc"):
        if table in net and len(net[table]) and net[table].in_service.any():
            raise UnsupportedNetwork(f"element table {table!r} is not supported")
    load = net.load
    for col in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent"):
        if col in load and (load[col].fillna(0) != 0).any():
            raise UnsupportedNetwork("voltage-dependent loads are not supported")
    for col in ("const_z_percent", "const_i_percent"):
        if col in load and (load[col].fillna(0) != 0).any():
            raise UnsupportedNetwork("voltage-dependent loads are not supported")
