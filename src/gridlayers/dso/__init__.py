"""gridlayers.dso."""
