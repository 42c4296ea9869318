"""The ``signalos`` command line (click); see :mod:`service.cli.main`."""
