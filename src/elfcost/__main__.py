"""`python -m elfcost` runs the command line."""

from elfcost.cli import run

run()
