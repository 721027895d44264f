r"""Extract pandapower's own DC-OPF data (ppci) into plain arrays for the market model.

The market must price exactly the network that ``pandapower.rundcopp`` optimises,
so this module does not re-derive line/transformer parameters. It runs pandapower's
converter (``_pd2ppc`` in OPF mode, the same call ``rundcopp`` makes) on a copy of the
net and reads the internal PYPOWER case (``ppci``): branch reactances, tap ratios,
phase shifts, ``RATE_A`` limits, bus shunts, generator limits and ``gencost``.

Notes
-----
DC model (PYPOWER ``makeBdc``/``opf_setup``), per in-service branch ``l`` from ``f`` to ``t``:

.. math::

    b_l = \frac{1}{x_l \tau_l}, \qquad
    P_l = S_{base} \left[ b_l (\theta_f - \theta_t) - b_l \varphi_l \right]

with reactance ``x_l`` (pu), tap ratio ``tau_l`` (1 if 0), phase shift ``phi_l`` (rad)
and ``S_base = net.sn_mva``. Branches with ``RATE_A`` of 0 or >= 1e10 are unlimited.
Bus shunt conductance ``GS`` (MW at 1 pu) is a fixed withdrawal, as in PYPOWER.

"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandapower.auxiliary import _add_auxiliary_elements, _init_rundcopp_options
from pandapower.pd2ppc import _pd2ppc
from pandapower.pypower.idx_brch import BR_X, F_BUS, RATE_A, SHIFT, T_BUS, TAP
from pandapower.pypower.idx_bus import BUS_TYPE, GS, PD, REF, VA
from pandapower.pypower.idx_cost import COST, MODEL, NCOST, POLYNOMIAL
from pandapower.pypower.idx_gen import GEN_BUS, PMAX, PMIN

#: RATE_A at or above this value is treated as "no limit" (as PYPOWER's opf_setup does).
UNLIMITED_RATE_MW = 1e10
#: Generator element types the market dispatches, in ppci gen-row lookup names.
GEN_ELEMENTS = {"ext_grid": "ext_grid", "gen": "gen", "sgen": "sgen_controllable"}


@dataclass(frozen=True)
class DcNetwork:
    """Arrays describing the DC-OPF of one pandapower net (model bus numbering = ppci).

    Attributes
    ----------
    base_mva : float
        System base power ``net.sn_mva`` (MVA).
    n_bus : int
        Number of in-service (ppci) buses.
    bus_lookup : pd.Series
        net bus index -> model bus (int), -1 for out-of-service or isolated buses.
    ref_va_rad : dict of int to float
        Model reference bus -> fixed voltage angle (rad).
    fixed_withdrawal_mw : np.ndarray
        Per model bus, withdrawal (MW) from everything except ``net.load``: shunt
        conductance, non-controllable sgen/storage, wards (load-positive).
    br_from, br_to : np.ndarray
        Model bus of each in-service branch's from (hv) and to (lv) end.
    br_b_pu : np.ndarray
        Series susceptance including tap, ``1/(x*tap)`` (pu).
    br_shift_rad : np.ndarray
        Phase shift (rad).
    br_rate_mw : np.ndarray
        Flow limit (MW); ``inf`` where unlimited.
    line_branch, trafo_branch : pd.Series
        net.line / net.trafo index -> model branch (int), -1 if not in service.
    gen_element : list of (str, int)
        For each dispatchable unit: (``'ext_grid'|'gen'|'sgen'``, element index).
    gen_bus : np.ndarray
        Model bus of each unit.
    gen_p_min_mw, gen_p_max_mw : np.ndarray
        Active-power limits (MW) as pandapower sets them (non-controllable gens pinned).
    gen_cost : np.ndarray
        Shape (n_gen, 3): ``c2`` ($/MW^2h), ``c1`` ($/MWh), ``c0`` ($/h) per unit.
    load_bus : pd.Series
        net.load index -> model bus, -1 if the load is out of service or isolated.

    """

    base_mva: float
    n_bus: int
    bus_lookup: pd.Series
    ref_va_rad: dict[int, float]
    fixed_withdrawal_mw: np.ndarray
    br_from: np.ndarray
    br_to: np.ndarray
    br_b_pu: np.ndarray
    br_shift_rad: np.ndarray
    br_rate_mw: np.ndarray
    line_branch: pd.Series
    trafo_branch: pd.Series
    gen_element: list[tuple[str, int]]
    gen_bus: np.ndarray
    gen_p_min_mw: np.ndarray
    gen_p_max_mw: np.ndarray
    gen_cost: np.ndarray
    load_bus: pd.Series

    @property
    def n_branch(self) -> int:
        """Number of in-service branches."""
        return len(self.br_from)


def _convert(net) -> tuple[object, dict]:
    """Run pandapower's DC-OPF converter on a deep copy of ``net``; return (copy, ppci)."""
    work = copy.deepcopy(net)
    _init_rundcopp_options(
        work, check_connectivity=True, switch_rx_ratio=0.5, delta=1e-10, trafo3w_losses="hv"
    )
    _add_auxiliary_elements(work)
    _, ppci = _pd2ppc(work)
    if len(work.dcline) and work.dcline.in_service.any():
        raise NotImplementedError("TransmissionMarket does not support net.dcline")
    return work, ppci


def _element_rows(work, element: str, n_gen: int) -> pd.Series:
    """Map in-service elements of ``element`` to ppci gen rows (index: element index)."""
    table = work[element]
    lookup = work._pd2ppc_lookups.get(GEN_ELEMENTS[element])
    if lookup is None or len(table) == 0:
        return pd.Series(dtype=np.int64)
    idx = table.index.to_numpy()
    valid = idx < len(lookup)
    rows = np.full(len(idx), -1, dtype=np.int64)
    rows[valid] = np.asarray(lookup)[idx[valid]]
    keep = (rows >= 0) & (rows < n_gen)
    if element == "sgen":
        ctrl = table.get("controllable", pd.Series(False, index=table.index))
        keep &= ctrl.fillna(False).astype(bool).to_numpy()
    keep &= table["in_service"].to_numpy(dtype=bool)
    return pd.Series(rows[keep], index=idx[keep])


def _gen_cost(ppci: dict, n_gen: int) -> np.ndarray:
    """Return (n_gen, 3) polynomial cost coefficients [c2, c1, c0] from ppci gencost."""
    gencost = ppci["gencost"][:n_gen]
    if np.any(gencost[:, MODEL] != POLYNOMIAL):
        raise NotImplementedError("TransmissionMarket supports poly_cost only, not pwl_cost")
    out = np.zeros((n_gen, 3))
    for row in range(n_gen):
        n = int(gencost[row, NCOST])
        coefs = gencost[row, COST : COST + n][::-1]  # ascending order c0, c1, (c2)
        out[row, 2] = coefs[0] if n >= 1 else 0.0
        out[row, 1] = coefs[1] if n >= 2 else 0.0
        out[row, 0] = coefs[2] if n >= 3 else 0.0
    return out


def _branch_map(work, branch_is: np.ndarray, element: str) -> pd.Series:
    """Map net.<element> index -> in-service model branch, -1 where not in service."""
    table = work[element]
    out = pd.Series(-1, index=table.index, dtype=np.int64)
    span = work._pd2ppc_lookups["branch"].get(element)
    if span is None:
        return out
    ppc_rows = np.arange(span[0], span[1])
    ppci_row = np.cumsum(branch_is) - 1
    out[:] = np.where(branch_is[ppc_rows], ppci_row[ppc_rows], -1)
    return out


def _load_bus(work, bus_lookup: pd.Series) -> pd.Series:
    """Map net.load index -> model bus (-1 if out of service or at an isolated bus)."""
    load = work.load
    if "controllable" in load and load.controllable.fillna(False).astype(bool).any():
        raise NotImplementedError("controllable loads: offer them as participant BidCurves")
    bus = bus_lookup.reindex(load.bus.to_numpy()).fillna(-1).astype(np.int64).to_numpy()
    bus = np.where(load.in_service.to_numpy(dtype=bool), bus, -1)
    return pd.Series(bus, index=load.index, dtype=np.int64)


def extract_dc_network(net) -> DcNetwork:
    """Read the DC-OPF data pandapower's ``rundcopp`` would use for ``net``.

    Parameters
    ----------
    net : pandapowerNet
        Transmission network with ``poly_cost`` (costs in $/MWh, $/MW^2h, $/h) and
        optional ``max_loading_percent``/``min_p_mw``/``max_p_mw`` limits. Not modified.

    Returns
    -------
    DcNetwork
        Arrays in model (ppci) numbering, with maps back to net indices.

    """
    work, ppci = _convert(net)
    bus, branch, gen = ppci["bus"], ppci["branch"], ppci["gen"]
    n_bus, n_gen = len(bus), len(gen)
    lookup = np.asarray(work._pd2ppc_lookups["bus"])
    b_idx = work.bus.index.to_numpy()
    raw = lookup[b_idx]
    in_ppci = (raw >= 0) & (raw < n_bus)  # isolated/out-of-service buses sit beyond ppci
    bus_lookup = pd.Series(np.where(in_ppci, raw, -1), index=work.bus.index, dtype=np.int64)

    branch_is = np.asarray(ppci["internal"]["branch_is"], dtype=bool)
    br = branch.real
    tap = np.where(br[:, TAP] == 0.0, 1.0, br[:, TAP])
    rate = br[:, RATE_A]
    rate = np.where((rate == 0.0) | (rate >= UNLIMITED_RATE_MW), np.inf, rate)

    elements, rows = [], []
    for element in GEN_ELEMENTS:
        mapped = _element_rows(work, element, n_gen)
        elements += [(element, int(i)) for i in mapped.index]
        rows += list(mapped.to_numpy())
    if len(set(rows)) != n_gen:
        raise NotImplementedError("only ext_grid, gen and controllable sgen may be dispatchable")
    rows = np.asarray(rows, dtype=np.int64)

    load_bus = _load_bus(work, bus_lookup)
    load_mw = (work.load.p_mw * work.load.scaling).to_numpy()
    pd_loads = np.zeros(n_bus)
    np.add.at(pd_loads, load_bus[load_bus >= 0].to_numpy(), load_mw[load_bus.to_numpy() >= 0])
    refs = np.flatnonzero(bus[:, BUS_TYPE] == REF)
    return DcNetwork(
        base_mva=float(ppci["baseMVA"]),
        n_bus=n_bus,
        bus_lookup=bus_lookup,
        ref_va_rad={int(r): float(np.deg2rad(bus[r, VA])) for r in refs},
        fixed_withdrawal_mw=bus[:, PD] + bus[:, GS] - pd_loads,
        br_from=br[:, F_BUS].astype(np.int64),
        br_to=br[:, T_BUS].astype(np.int64),
        br_b_pu=1.0 / (br[:, BR_X] * tap),
        br_shift_rad=np.deg2rad(br[:, SHIFT]),
        br_rate_mw=rate,
        line_branch=_branch_map(work, branch_is, "line"),
        trafo_branch=_branch_map(work, branch_is, "trafo"),
        gen_element=elements,
        gen_bus=gen[rows, GEN_BUS].real.astype(np.int64),
        gen_p_min_mw=gen[rows, PMIN].real,
        gen_p_max_mw=gen[rows, PMAX].real,
        gen_cost=_gen_cost(ppci, n_gen)[rows],
        load_bus=load_bus,
    )
