"""Adapters: ``setup()`` for a plain service (:mod:`.service`), WSGI (:mod:`.wsgi`) and ASGI (:mod:`.asgi`).

Each is a thin layer over the sans-I/O :class:`~clientstate.Binding`: it reads
the ``Cookie`` fields, attaches the slot, and adds the binding's headers to the
response. ``clientstate.wsgi`` and ``clientstate.asgi`` are these modules.
"""
