"""Handlers: where a state is kept. Private; the public names are re-exported by :mod:`clientstate`."""
