"""gridlayers.dso: distribution-system operator cores (feeder OPF model, DLMPs).

See ``docs/distribution-opf.md`` for the model and its accuracy.
"""

from gridlayers.dso.lindistflow import LinDistFlowFeeder, LinDistFlowResult
from gridlayers.dso.linear_system import LossCoefficients, OperatingPoint
from gridlayers.dso.opf import dlmp_usd_per_mwh, extract_state
from gridlayers.dso.topology import MeshedFeederError, RadialNetwork

__all__ = [
    "LinDistFlowFeeder",
    "LinDistFlowResult",
    "LossCoefficients",
    "MeshedFeederError",
    "OperatingPoint",
    "RadialNetwork",
    "dlmp_usd_per_mwh",
    "extract_state",
]
