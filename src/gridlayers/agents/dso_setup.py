"""Building an LDA's DSO core and its Total-TSO view from the run's LDA model."""

from __future__ import annotations

import inspect
from typing import Any

from gridlayers.agents.lda_cache import lda_model
from gridlayers.dso import LinDistFlowFeeder
from gridlayers.dso.strategies import make_dso, resolve_dso_strategy
from gridlayers.lda import LDAModel
from gridlayers.simulators.codec import curve_values, decode_curve

#: Offer block slots per device in DSO and TSO models.
BLOCKS_PER_DEVICE = 6


def linear_feeder(model: LDAModel) -> LinDistFlowFeeder:
    """Return the LinDistFlow model of an LDA's feeder with the LDA's planning limits.

    The voltage band is the LDA's ``[vm_min_pu + voltage_margin_pu, vm_max_pu -
    voltage_margin_pu]`` (the margin absorbs forecast error); the physics layer counts
    violations against the unmargined band (:class:`gridlayers.grid.feeder.Feeder`).
    """
    lim = model.config.limits
    margin = lim.voltage_margin_pu
    return LinDistFlowFeeder(
        model.net,
        vm_min_pu=lim.vm_min_pu + margin,
        vm_max_pu=lim.vm_max_pu - margin,
        max_loading_percent=lim.max_loading_percent,
    )


def device_buses(model: LDAModel) -> dict[str, int]:
    """Return device id -> feeder bus for every DER device of the LDA."""
    return {d.device_id: int(d.bus) for d in model.devices}


def build_dso(model: LDAModel, max_blocks: int) -> Any:
    """Build the LDA's DSO core with the strategy and ``dso_params`` named in the scenario.

    The LDA's ``limits.slack_penalty_usd_per_mwh`` prices the limit slack of the DSO's
    soft-limit fallback (:class:`gridlayers.dso.DSOOperator`); it is passed only to
    strategies that accept it (a keyword of that name or ``**params``); strategies that
    declare a keyword ``lda_name`` get the LDA's name. The LDA's ``dso_params`` come last.
    """
    strategy, params = dso_strategy_params(model, max_blocks)
    return make_dso(strategy, linear_feeder(model), device_buses(model), **params)


def dso_strategy_params(model: LDAModel, max_blocks: int) -> tuple[str, dict[str, Any]]:
    """Return the LDA's DSO strategy name and its keyword arguments (see :func:`build_dso`)."""
    params: dict[str, Any] = {"blocks_per_device": BLOCKS_PER_DEVICE, "max_blocks": max_blocks}
    factory = resolve_dso_strategy(model.config.dso_strategy)
    if _accepts(factory, "slack_penalty_usd_per_mwh"):
        params["slack_penalty_usd_per_mwh"] = model.config.limits.slack_penalty_usd_per_mwh
    if _declares(factory, "lda_name"):
        params["lda_name"] = model.name
    params.update(model.config.dso_params)
    return model.config.dso_strategy, params


def _declares(factory: Any, keyword: str) -> bool:
    """Whether ``factory`` names the keyword argument ``keyword`` (not only ``**params``)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters and parameters[keyword].kind is not inspect.Parameter.VAR_KEYWORD


def _accepts(factory: Any, keyword: str) -> bool:
    """Whether ``factory`` takes the keyword argument ``keyword``."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature: do not pass anything extra
        return False
    return any(
        (p.name == keyword and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
        or p.kind is p.VAR_KEYWORD
        for p in parameters
    )


class FeederView:
    """What the TSO holds of one LDA under Total TSO: the DSO's feeder model and DER offers.

    Wraps a :class:`gridlayers.dso.extension.FeederMarketExtension` and feeds it from the
    DSO's per-interval message ``{"p_fixed": {bus: MW}, "q_fixed": {bus: Mvar},
    "offers": {device id: encoded BidCurve}}``.
    """

    def __init__(self, model: LDAModel, interface_bus: int) -> None:
        from gridlayers.dso.extension import FeederMarketExtension

        self.extension = FeederMarketExtension(
            linear_feeder(model),
            device_buses(model),
            interface_bus,
            blocks_per_device=BLOCKS_PER_DEVICE,
            name=model.name,
            slack_penalty_usd_per_mwh=model.config.limits.slack_penalty_usd_per_mwh,
        )

    def set_interval_from_message(self, message: dict[str, Any]) -> int:
        """Load one interval's inputs; return how many values crossed the interface."""
        import pandas as pd

        p = pd.Series({int(b): v for b, v in message["p_fixed"].items()}, dtype=float)
        q = pd.Series({int(b): v for b, v in message["q_fixed"].items()}, dtype=float)
        offers = {dev: decode_curve(c) for dev, c in message["offers"].items()}
        self.extension.set_interval(p, q, offers)
        return len(p) + len(q) + sum(curve_values(c) for c in message["offers"].values())

    def interface_p_mw(self) -> float:
        """Return the cleared net export of the LDA (MW, injection positive)."""
        return self.extension.interface_p_mw()

    def setpoints_mw(self) -> dict[str, float]:
        """Return the cleared set-point per device (MW, injection positive)."""
        return self.extension.setpoints_mw()

    def relinearise_at_solution(self) -> float:
        """Re-linearise the feeder's losses at the cleared point; return the largest change (pu).

        See :meth:`gridlayers.dso.extension.FeederMarketExtension.relinearise_at_solution`.
        """
        return self.extension.relinearise_at_solution()

    def slack_used(self) -> dict[str, float | int]:
        """Return the limit slack of the last clear (see ``FeederMarketExtension.slack_used``)."""
        return self.extension.slack_used()

    def add_to_model(self, model: Any) -> Any:
        """Delegate to the extension (the market calls this once)."""
        return self.extension.add_to_model(model)


def build_feeder_views(
    run_id: str, scenario: dict[str, Any], interfaces: dict[str, int]
) -> dict[str, FeederView]:
    """Return one Total-TSO feeder view per LDA (the models the DSOs hand up)."""
    return {
        lda: FeederView(lda_model(run_id, scenario, lda), bus) for lda, bus in interfaces.items()
    }
