"""``python -m simulator`` runs the command line."""

from .cli import entry

entry()
