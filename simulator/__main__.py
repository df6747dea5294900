"""``python -m simulator`` runs the command line."""

from ._entry import main

main()
