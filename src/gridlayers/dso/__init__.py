"""gridlayers.dso: distribution-system operator cores (feeder OPF model, DLMPs, paradigms).

See ``docs/distribution-opf.md`` for the feeder model and ``docs/dso.md`` for the
Total DSO / Minimal DSO / Total TSO paradigm core.
"""

from gridlayers.dso.extension import FeederMarketExtension
from gridlayers.dso.lindistflow import LinDistFlowFeeder, LinDistFlowResult
from gridlayers.dso.linear_system import LossCoefficients, OperatingPoint
from gridlayers.dso.offer_blocks import InfeasibleDSOError
from gridlayers.dso.operator import Disaggregation, DSOOperator
from gridlayers.dso.opf import dlmp_usd_per_mwh, extract_state
from gridlayers.dso.redispatch import Redispatch, Redispatcher
from gridlayers.dso.strategies import (
    DSO_STRATEGIES,
    DSOStrategy,
    ProRataDSO,
    make_dso,
    register_dso_strategy,
)
from gridlayers.dso.topology import MeshedFeederError, RadialNetwork
from gridlayers.dso.virtual_resource import VirtualResource

__all__ = [
    "DSO_STRATEGIES",
    "DSOOperator",
    "DSOStrategy",
    "Disaggregation",
    "FeederMarketExtension",
    "InfeasibleDSOError",
    "ProRataDSO",
    "Redispatch",
    "Redispatcher",
    "VirtualResource",
    "make_dso",
    "register_dso_strategy",
    "LinDistFlowFeeder",
    "LinDistFlowResult",
    "LossCoefficients",
    "MeshedFeederError",
    "OperatingPoint",
    "RadialNetwork",
    "dlmp_usd_per_mwh",
    "extract_state",
]
