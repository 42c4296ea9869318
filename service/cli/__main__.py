"""``python -m service.cli`` runs the ``signalos`` command."""

from service.cli.main import main

main()
