"""``python -m lstmconv``: the command line."""

from .cli import run

run()
