"""gridlayers.market."""
