"""gridlayers.planner."""
