"""``python -m stelab`` runs the command line."""

from stelab.cli import main

main()
