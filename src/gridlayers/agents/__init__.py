"""gridlayers.agents."""
