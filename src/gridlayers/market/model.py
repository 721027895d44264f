r"""Build the DC-OPF market-clearing model once (pyomo), with every changing input mutable.

Notes
-----
Sets: ``BUS`` (model buses, ppci numbering), ``BRANCH`` (in-service lines/trafos),
``GEN`` (dispatchable ext_grid/gen/controllable sgen), ``LOAD`` (net.load rows),
``PART`` (participants), ``BLOCK`` (bid block slots ``0..max_blocks-1``).

Objective ($/h):

.. math::

    \min \sum_g (c_{2,g} P_g^2 + c_{1,g} P_g + c_{0,g})
      + \sum_{p,k} \pi_{p,k} x_{p,k} + \sum_n (\mathrm{VOLL}\, U_n + 10^{-3} U_n^2) + \sum_e C_e

Nodal balance at bus ``n`` (MW), whose dual is the LMP ($/MWh):

.. math::

    \sum_{g \in n} P_g + \sum_{p \in n} (\underline{p}_p + \sum_k x_{p,k})
      + \sum_{e} I_{e,n} + U_n - \sum_{l: f(l)=n} F_l + \sum_{l: t(l)=n} F_l
      = D^{fix}_n + \sum_{d \in n} D_d + E_n

Flow definition and limits: ``F_l = S_base b_l (theta_f - theta_t - phi_l)``, written
with the scaled angle ``Theta = S_base theta`` as
``F_l = b_l (Theta_f - Theta_t) - S_base b_l phi_l`` (coefficients ``b_l`` in pu instead
of ``S_base b_l``: HiGHS's QP solver failed on a case118 instance with the unscaled form),
``-R_l <= F_l <= R_l``; bounds ``Pmin_g <= P_g <= Pmax_g``, ``0 <= x_pk <= q_pk``,
``0 <= U_n <= max(0, D^{fix}_n + sum_d D_d + E_n)``; ``theta`` fixed at the reference buses.

"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyomo.environ as pyo

from gridlayers.market.network import DcNetwork

#: Tiny quadratic cost on unserved load ($/MW^2h). It makes the shedding allocation unique
#: (HiGHS's active-set QP solver cycles on the degenerate, equal-VOLL slack otherwise); its
#: slope is 0 at zero shedding, so it never changes an LMP unless load is actually shed.
UNSERVED_REGULARISATION = 1e-3
#: Generator limits at or beyond this magnitude (pandapower's ``p_lim_default``) are dropped.
DEFAULT_P_LIMIT_MW = 1e9


@runtime_checkable
class MarketExtension(Protocol):
    """Hook to embed further pyomo blocks (e.g. a feeder model, "Total TSO") in the market."""

    def add_to_model(self, model: pyo.ConcreteModel) -> tuple[dict[int, Any], Any]:
        """Build own pyomo Block(s) on ``model``.

        Parameters
        ----------
        model : pyomo.environ.ConcreteModel
            The market model (before the nodal balance and objective are built).

        Returns
        -------
        tuple of (dict of int to expression, expression)
            ``{net transmission bus index: net injection expression (MW)}`` and a cost
            expression ($/h) added to the objective. Use mutable Params for inputs that
            change between clears; the market never rebuilds the model.

        """
        ...


def _add_sets_and_params(
    m: pyo.ConcreteModel,
    dc: DcNetwork,
    participants: Sequence[str],
    participant_bus: Sequence[int],
    max_blocks: int,
) -> None:
    """Declare sets and (mutable) parameters."""
    m.BUS = pyo.RangeSet(0, dc.n_bus - 1)
    m.BRANCH = pyo.RangeSet(0, dc.n_branch - 1)
    m.GEN = pyo.RangeSet(0, len(dc.gen_element) - 1)
    active_loads = [int(i) for i, b in dc.load_bus.items() if b >= 0]
    m.LOAD = pyo.Set(initialize=active_loads, ordered=True, doc="net.load index (in service)")
    m.PART = pyo.Set(initialize=list(participants), ordered=True, doc="participant name")
    m.BLOCK = pyo.RangeSet(0, max_blocks - 1)
    m.load_p_mw = pyo.Param(m.LOAD, mutable=True, initialize=0.0, doc="load withdrawal (MW)")
    m.extra_load_mw = pyo.Param(
        m.BUS, mutable=True, initialize=0.0, doc="additional withdrawal at a bus (MW)"
    )
    m.unserved_max_mw = pyo.Param(
        m.BUS, mutable=True, initialize=0.0, doc="sheddable withdrawal at a bus (MW)"
    )
    m.bid_quantity_mw = pyo.Param(
        m.PART, m.BLOCK, mutable=True, initialize=0.0, doc="bid block width (MW)"
    )
    m.bid_price_usd_per_mwh = pyo.Param(
        m.PART, m.BLOCK, mutable=True, initialize=0.0, doc="bid block price ($/MWh)"
    )
    m.part_p_min_mw = pyo.Param(
        m.PART, mutable=True, initialize=0.0, doc="participant injection floor (MW)"
    )
    m.part_bus = dict(zip(participants, participant_bus, strict=True))


def _add_variables(m: pyo.ConcreteModel, dc: DcNetwork) -> None:
    """Declare generation, angle, flow, bid-block and unserved-load variables."""

    def gen_bounds(_m, g):
        lo, hi = dc.gen_p_min_mw[g], dc.gen_p_max_mw[g]
        # pandapower's default limit (p_lim_default = 1e9 MW) means "unbounded"
        return (
            float(lo) if abs(lo) < DEFAULT_P_LIMIT_MW else None,
            float(hi) if abs(hi) < DEFAULT_P_LIMIT_MW else None,
        )

    def flow_bounds(_m, br):
        rate = dc.br_rate_mw[br]
        return (-float(rate), float(rate)) if np.isfinite(rate) else (None, None)

    m.Gen = pyo.Var(m.GEN, bounds=gen_bounds, doc="generator injection (MW)")
    m.Theta = pyo.Var(m.BUS, doc="voltage angle times S_base (rad*MVA), scaled for conditioning")
    for bus, va in dc.ref_va_rad.items():
        m.Theta[bus].fix(va * dc.base_mva)
    m.Flow = pyo.Var(m.BRANCH, bounds=flow_bounds, doc="branch flow from-side (MW)")
    m.BidBlock = pyo.Var(
        m.PART,
        m.BLOCK,
        bounds=lambda _m, p, k: (0.0, _m.bid_quantity_mw[p, k]),
        doc="cleared bid block quantity (MW)",
    )
    m.Unserved = pyo.Var(
        m.BUS,
        bounds=lambda _m, n: (0.0, _m.unserved_max_mw[n]),
        doc="load shedding slack (MW), at most the bus's withdrawal",
    )


def _add_flow_definition(m: pyo.ConcreteModel, dc: DcNetwork) -> None:
    """``F_l = b_l * (Theta_f - Theta_t) - S_base * b_l * phi_l`` (MW), ``Theta = S_base*theta``."""

    def rule(_m, br):
        b_pu = float(dc.br_b_pu[br])
        f, t = int(dc.br_from[br]), int(dc.br_to[br])
        shift_mw = dc.base_mva * b_pu * float(dc.br_shift_rad[br])
        return _m.Flow[br] == b_pu * (_m.Theta[f] - _m.Theta[t]) - shift_mw

    m.FlowDefinition = pyo.Constraint(m.BRANCH, rule=rule, doc="DC branch flow (MW)")


def _add_balance(
    m: pyo.ConcreteModel, dc: DcNetwork, ext_injections: Sequence[Mapping[int, Any]]
) -> None:
    """Nodal balance: injections - net outflow == withdrawals (MW); dual = LMP ($/MWh)."""
    inj: list[list[Any]] = [[] for _ in range(dc.n_bus)]
    wdr: list[list[Any]] = [[] for _ in range(dc.n_bus)]
    for g in m.GEN:
        inj[dc.gen_bus[g]].append(m.Gen[g])
    for p in m.PART:
        node = m.part_bus[p]
        inj[node].append(m.part_p_min_mw[p])
        inj[node].extend(m.BidBlock[p, k] for k in m.BLOCK)
    for injections in ext_injections:
        for bus, expr in injections.items():
            node = int(dc.bus_lookup.get(bus, -1))
            if node < 0:
                raise ValueError(f"extension injects at bus {bus}, not an in-service net bus")
            inj[node].append(expr)
    for br in m.BRANCH:
        inj[dc.br_from[br]].append(-m.Flow[br])
        inj[dc.br_to[br]].append(m.Flow[br])
    for d in m.LOAD:
        wdr[dc.load_bus[d]].append(m.load_p_mw[d])

    def rule(_m, n):
        fixed = float(dc.fixed_withdrawal_mw[n])
        return sum(inj[n]) + _m.Unserved[n] == fixed + sum(wdr[n]) + _m.extra_load_mw[n]

    m.Balance = pyo.Constraint(m.BUS, rule=rule, doc="nodal power balance (MW)")


def _piecewise_generation_cost(
    m: pyo.ConcreteModel, dc: DcNetwork, segments: int, p_cap_mw: float
) -> Any:
    """Secant segments of each quadratic cost curve; return the cost expression ($/h).

    Notes
    -----
    For a generator with ``c2 > 0`` on ``[a, b]`` (``b`` capped at ``a + p_cap_mw``), ``S``
    equal segments of width ``w = (b - a) / S`` carry Vars ``0 <= CostSeg[g, s] <= w`` with
    slopes ``c1 + c2 (a_s + a_{s+1})`` (the secant of ``c2 p^2 + c1 p`` over the segment),
    and ``Gen[g] = a + sum_s CostSeg[g, s]``. The convex cost is exact at the breakpoints;
    LMPs are the slope of the marginal segment. This keeps the clearing a pure LP.

    """
    c2, c1 = dc.gen_cost[:, 0], dc.gen_cost[:, 1]
    quad = [g for g in m.GEN if c2[g] > 0.0]
    lo = {g: float(dc.gen_p_min_mw[g]) for g in quad}
    hi = {g: float(min(dc.gen_p_max_mw[g], dc.gen_p_min_mw[g] + p_cap_mw)) for g in quad}
    width = {g: max(hi[g] - lo[g], 0.0) / segments for g in quad}
    m.QUAD_GEN = pyo.Set(initialize=quad, doc="generators with quadratic cost")
    m.COST_SEG = pyo.RangeSet(0, segments - 1, doc="cost curve segments")
    m.CostSeg = pyo.Var(
        m.QUAD_GEN,
        m.COST_SEG,
        bounds=lambda _m, g, s: (0.0, width[g]),
        doc="dispatch within a cost segment (MW)",
    )
    m.CostSegLink = pyo.Constraint(
        m.QUAD_GEN,
        rule=lambda _m, g: _m.Gen[g] == lo[g] + sum(_m.CostSeg[g, s] for s in _m.COST_SEG),
        doc="dispatch = segment lower end + filled segments (MW)",
    )

    def slope(g: int, s: int) -> float:
        a = lo[g] + s * width[g]
        return float(c1[g] + c2[g] * (2 * a + width[g]))

    fixed = sum(float(c2[g]) * lo[g] ** 2 + float(c1[g]) * lo[g] for g in quad)
    linear = sum(float(c1[g]) * m.Gen[g] for g in m.GEN if c2[g] == 0.0 and c1[g] != 0.0)
    return linear + sum(slope(g, s) * m.CostSeg[g, s] for g in quad for s in m.COST_SEG) + fixed


def build_market_model(
    dc: DcNetwork,
    participants: Sequence[str],
    participant_bus: Sequence[int],
    max_blocks: int,
    extensions: Sequence[MarketExtension],
    voll_usd_per_mwh: float,
    cost_segments: int | None = None,
) -> pyo.ConcreteModel:
    """Build the DC-OPF clearing model once.

    Parameters
    ----------
    dc : DcNetwork
        Network data from :func:`gridlayers.market.network.extract_dc_network`.
    participants : sequence of str
        Participant names (one ``BidCurve`` each per clear).
    participant_bus : sequence of int
        Model bus of each participant.
    max_blocks : int
        Number of bid block slots per participant.
    extensions : sequence of MarketExtension
        Extra blocks; their injections enter the nodal balance, their cost the objective.
    voll_usd_per_mwh : float
        Cost of unserved load ($/MWh).
    cost_segments : int, optional
        ``None``: quadratic generator costs are exact (a QP). A number: each quadratic cost
        curve becomes that many secant segments and the model is a pure LP (robust with
        embedded feeder models; see :func:`_piecewise_generation_cost`).

    Returns
    -------
    pyomo.environ.ConcreteModel
        Model with mutable Params ``load_p_mw``, ``extra_load_mw``, ``bid_quantity_mw``,
        ``bid_price_usd_per_mwh``, ``part_p_min_mw``; constraints ``Balance`` (LMP duals).

    """
    m = pyo.ConcreteModel(name="gridlayers_tso_market")
    _add_sets_and_params(m, dc, participants, participant_bus, max_blocks)
    m.voll_usd_per_mwh = pyo.Param(
        mutable=True, initialize=float(voll_usd_per_mwh), doc="value of lost load ($/MWh)"
    )
    _add_variables(m, dc)
    _add_flow_definition(m, dc)
    ext_results = [ext.add_to_model(m) for ext in extensions]
    _add_balance(m, dc, [inj for inj, _ in ext_results])
    c2, c1, c0 = dc.gen_cost[:, 0], dc.gen_cost[:, 1], dc.gen_cost[:, 2]
    if cost_segments is None:
        variable = sum(
            float(c2[g]) * m.Gen[g] ** 2 + float(c1[g]) * m.Gen[g]
            for g in m.GEN
            if c2[g] != 0.0 or c1[g] != 0.0
        )
        unserved_quadratic = UNSERVED_REGULARISATION
    else:
        finite = dc.gen_p_max_mw[np.isfinite(dc.gen_p_max_mw) & (dc.gen_p_max_mw < 1e6)]
        cap = float(finite.sum()) if finite.size else 1e4  # range of an unbounded slack gen
        variable = _piecewise_generation_cost(m, dc, cost_segments, cap)
        unserved_quadratic = 0.0
    m.generation_cost = pyo.Expression(
        expr=variable + float(c0.sum()), doc="generation cost incl. constant terms ($/h)"
    )
    m.bid_cost = pyo.Expression(
        expr=sum(m.bid_price_usd_per_mwh[p, k] * m.BidBlock[p, k] for p in m.PART for k in m.BLOCK),
        doc="cleared bid block cost ($/h)",
    )
    m.unserved_cost = pyo.Expression(
        expr=sum(
            m.voll_usd_per_mwh * m.Unserved[n] + unserved_quadratic * m.Unserved[n] ** 2
            for n in m.BUS
        ),
        doc="value of lost load ($/h)",
    )
    m.extension_cost = pyo.Expression(
        expr=sum(cost for _, cost in ext_results), doc="extension cost ($/h)"
    )
    m.TotalCost = pyo.Objective(
        expr=m.generation_cost + m.bid_cost + m.unserved_cost + m.extension_cost,
        sense=pyo.minimize,
        doc="total cost ($/h)",
    )
    return m
