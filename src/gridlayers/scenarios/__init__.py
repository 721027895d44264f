"""gridlayers.scenarios."""
