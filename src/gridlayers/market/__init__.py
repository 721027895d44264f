"""TSO market-clearing core: DC-OPF economic dispatch on a pandapower net, LMPs from duals.

Pure core (no mosaik). Build a :class:`TransmissionMarket` once, then call
:meth:`TransmissionMarket.clear` every interval; only mutable Params change.
"""

from gridlayers.market.clearing import (
    DEFAULT_VOLL_USD_PER_MWH,
    ClearingError,
    ClearingResult,
    TransmissionMarket,
    clear_pandapower,
)
from gridlayers.market.model import MarketExtension
from gridlayers.market.network import DcNetwork, extract_dc_network

__all__ = [
    "DEFAULT_VOLL_USD_PER_MWH",
    "ClearingError",
    "ClearingResult",
    "DcNetwork",
    "MarketExtension",
    "TransmissionMarket",
    "clear_pandapower",
    "extract_dc_network",
]
