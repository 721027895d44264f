"""DSO behaviours ("strategies") with a registry, so a scenario picks one by name.

A strategy is a class built once per LDA as ``cls(feeder, devices, **params)`` that
satisfies :class:`DSOStrategy`. Two are registered:

* ``"optimal"``: :class:`~gridlayers.dso.operator.DSOOperator` (least-cost
  disaggregation within feeder limits, DLMPs from duals);
* ``"pro_rata"``: :class:`ProRataDSO`, the same virtual resource, but the award is split
  among devices in proportion to their offered flexibility, ignoring feeder limits.

Register your own, or name it in a scenario as ``package.module:ClassName``; importing
that module runs its code, so it needs the opt-in ``--allow-import`` (CLI) or
``GRIDLAYERS_ALLOW_IMPORT=1`` (environment, for programmatic use)::

    from gridlayers.dso.strategies import DSO_STRATEGIES, register_dso_strategy

    class MyDSO(DSOOperator):                  # or any class satisfying DSOStrategy
        def disaggregate(self, award_mw, interface_price_usd_per_mwh): ...

    register_dso_strategy("mine", MyDSO)       # then make_dso("mine", feeder, devices)

"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import pandas as pd

from gridlayers.domain.bid_curve import BidCurve
from gridlayers.dso.lindistflow import LinDistFlowFeeder
from gridlayers.dso.operator import Disaggregation, DSOOperator
from gridlayers.dso.virtual_resource import VirtualResource


@runtime_checkable
class DSOStrategy(Protocol):
    """What a DSO of one LDA does in the ``total_dso`` paradigm.

    Each interval the agent calls :meth:`virtual_resource` (offer to the TSO), then,
    after clearing, :meth:`disaggregate` with the LDA's award and interface LMP.
    Implementations keep any optimisation model built once and update it in place.
    """

    def virtual_resource(
        self, p_fixed_mw: pd.Series, q_fixed_mvar: pd.Series, offers: Mapping[str, BidCurve]
    ) -> VirtualResource:
        """Return the interface offer for the interval (MW, $/MWh, injection positive)."""
        ...

    def disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Split the interface award (MW) among devices; return set-points and DLMPs."""
        ...


class ProRataDSO(DSOOperator):
    """Pro-rata DSO: optimal virtual resource, network-blind disaggregation.

    Notes
    -----
    Every device gets ``p_d = p_min_d + alpha (p_max_d - p_min_d)`` with one common
    ``alpha in [0, 1]`` chosen so that the linear model's interface export equals the award
    exactly. The export is affine in ``alpha`` (losses linearised at the interval's base
    point), so two direct power-flow solves (``alpha = 0, 1``) determine ``alpha``. Feeder
    limits are ignored (it may violate them); DLMPs are the interface price at every bus
    (no network model in the pricing); the cost is the as-offered cost of the set-points.

    """

    def disaggregate(self, award_mw: float, interface_price_usd_per_mwh: float) -> Disaggregation:
        """Split ``award_mw`` (MW) pro rata to offered flexibility (see class notes)."""
        self._require_interval()
        offers, p_fixed = self._offers, self._fixed[0]
        ends = [self._linear_export(alpha) for alpha in (0.0, 1.0)]
        span = ends[1] - ends[0]
        alpha = 0.0 if abs(span) < 1e-12 else (float(award_mw) - ends[0]) / span
        alpha = min(max(alpha, 0.0), 1.0)
        setpoints = self._pro_rata(alpha)
        state = self._flow(setpoints)
        p_int = float(state.interface_p_mw)
        fixed = float(p_fixed.sum())
        price = float(interface_price_usd_per_mwh)
        return Disaggregation(
            setpoints_mw=setpoints,
            dlmp_usd_per_mwh=pd.Series(
                price, index=sorted(self.feeder.bus_node_bus), name="dlmp_usd_per_mwh"
            ),
            interface_p_mw=p_int,
            cost_usd_per_h=sum(offers[d].cost_usd_per_h(p) for d, p in setpoints.items()),
            losses_p_mw=fixed + sum(setpoints.values()) - p_int,
            solve_seconds=0.0,
        )

    def _pro_rata(self, alpha: float) -> dict[str, float]:
        return {d: c.p_min_mw + alpha * (c.p_max_mw - c.p_min_mw) for d, c in self._offers.items()}

    def _flow(self, setpoints: Mapping[str, float]):  # noqa: ANN202
        p_fixed, q_fixed = self._fixed
        p = p_fixed.copy()
        for dev, bus in self.devices.items():
            p.loc[bus] = p.get(bus, 0.0) + setpoints[dev]
        return self.feeder.solve_power_flow(
            p, q_fixed, operating_point=self.operating_point, relinearise=0
        )

    def _linear_export(self, alpha: float) -> float:
        return float(self._flow(self._pro_rata(alpha)).interface_p_mw)


DSOFactory = Callable[..., DSOStrategy]


def _external_dso(
    feeder: LinDistFlowFeeder,
    devices: Mapping[str, int],
    *,
    lda_name: str | None = None,
    **params: object,
) -> DSOStrategy:
    """Build :class:`gridlayers.gateway.dso.ExternalDSO` (imported on use: needs pyzmq)."""
    from gridlayers.gateway.dso import ExternalDSO

    return ExternalDSO(feeder, devices, lda_name=lda_name, **params)  # type: ignore[arg-type]


#: Registry of DSO strategies: name -> class/factory ``(feeder, devices, **params)``.
DSO_STRATEGIES: dict[str, DSOFactory] = {
    "optimal": DSOOperator,
    "pro_rata": ProRataDSO,
    "external": _external_dso,  # decisions from an agent over ZeroMQ (docs/external-agents.md)
}


def register_dso_strategy(name: str, factory: DSOFactory) -> None:
    """Register a DSO strategy under ``name`` (raises ``ValueError`` if taken)."""
    if name in DSO_STRATEGIES:
        msg = f"DSO strategy {name!r} is already registered"
        raise ValueError(msg)
    DSO_STRATEGIES[name] = factory


#: Environment variable that allows scenarios to name DSO strategies by import path
#: (``"1"``); ``gridlayers run|compare|validate|loop|validate-plan|serve --allow-import``
#: sets it for the command and the simulator processes it starts.
ALLOW_IMPORT_ENV = "GRIDLAYERS_ALLOW_IMPORT"

#: ``package.module:ClassName`` (dotted Python identifiers, one colon).
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class ImportNotAllowedError(ValueError):
    """A scenario names a strategy by import path, but importing user code is not allowed."""


def import_allowed() -> bool:
    """Return whether importing user code named in a scenario is allowed.

    Only the environment variable :data:`ALLOW_IMPORT_ENV` set to ``"1"`` allows it (the
    CLI's ``--allow-import`` sets it); nothing in a scenario file can.
    """
    return os.environ.get(ALLOW_IMPORT_ENV) == "1"


def resolve_dso_strategy(name: str, *, allow_import: bool | None = None) -> DSOFactory:
    """Return the factory of a DSO strategy named in a scenario.

    Parameters
    ----------
    name : str
        A key of :data:`DSO_STRATEGIES`, or ``"package.module:ClassName"`` for a
        researcher's own strategy (imported on use, nothing in gridlayers changes).
    allow_import : bool, optional
        Whether an import path may be imported; default :func:`import_allowed` (the
        ``GRIDLAYERS_ALLOW_IMPORT=1`` opt-in). Importing runs the module's code, so it
        is never implied by a scenario file.

    Raises
    ------
    ImportNotAllowedError
        If ``name`` is an import path and importing is not allowed.
    ValueError
        If the name is neither registered nor importable.

    """
    if name in DSO_STRATEGIES:
        return DSO_STRATEGIES[name]
    known = f"known: {sorted(DSO_STRATEGIES)} or 'package.module:ClassName'"
    if ":" not in name:
        msg = f"unknown DSO strategy {name!r}; {known}"
        raise ValueError(msg)
    if not _IMPORT_PATH.match(name):
        msg = f"DSO strategy {name!r} is not an import path 'package.module:ClassName'; {known}"
        raise ValueError(msg)
    if not (import_allowed() if allow_import is None else allow_import):
        msg = (
            f"DSO strategy {name!r} would import and run user code, which is off by default; "
            f"if you trust it, pass --allow-import (or set {ALLOW_IMPORT_ENV}=1)"
        )
        raise ImportNotAllowedError(msg)
    module, _, attr = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # noqa: BLE001 - user code may fail in any way on import
        msg = f"cannot import DSO strategy {name!r}: {type(exc).__name__}: {exc}"
        raise ValueError(msg) from None
    if not callable(factory):
        msg = f"DSO strategy {name!r} is not a class or factory (found {type(factory).__name__})"
        raise ValueError(msg)
    return factory


def make_dso(
    name: str, feeder: LinDistFlowFeeder, devices: Mapping[str, int], **params: object
) -> DSOStrategy:
    """Build the DSO strategy ``name`` for one LDA.

    Parameters
    ----------
    name : str
        A key of :data:`DSO_STRATEGIES` or an import path (see :func:`resolve_dso_strategy`).
    feeder : LinDistFlowFeeder
        The LDA's feeder model.
    devices : mapping of str to int
        Device id -> pandapower bus.
    **params
        Passed to the strategy (e.g. ``blocks_per_device=6, max_blocks=10``).

    Returns
    -------
    DSOStrategy
        The built DSO.

    """
    return resolve_dso_strategy(name)(feeder, devices, **params)
