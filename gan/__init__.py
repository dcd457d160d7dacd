"""fwp.gan."""
