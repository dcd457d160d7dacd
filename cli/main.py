"""The ``fwp`` command."""

import click


@click.group()
def cli() -> None:
    """fwp."""
