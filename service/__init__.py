"""SignalOS service: the Litestar HTTP application over :mod:`signalos_core`.

Import :func:`service.app.create_app` to build the application; nothing here is imported eagerly so the
``signalos`` command line stays fast.
"""
