"""fwp.cli."""
