"""fwp.painters."""
