"""``python -m simulator`` runs the command line."""

from simulator._entry import main

main()
