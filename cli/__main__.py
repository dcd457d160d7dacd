"""``python -m fwp.cli`` runs the ``fwp`` command."""

from .main import cli

if __name__ == "__main__":
    cli()
