"""gridlayers.results."""
