"""`python -m mailhost` runs the command-line interface."""

from mailhost.cli.main import run

run()
