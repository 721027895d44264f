"""gridlayers: compare TSO/DSO/DER operating paradigms and feed them into planning."""

__version__ = "0.1.0"
