"""`python -m echoprobe` runs the `echoprobe` command."""

from echoprobe.cli.echoprobe import run

run()
