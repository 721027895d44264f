"""gridlayers.der."""
