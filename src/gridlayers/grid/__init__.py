"""gridlayers.grid."""
