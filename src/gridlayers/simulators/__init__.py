"""gridlayers.simulators."""
