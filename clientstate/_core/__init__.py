"""The sans-I/O core of clientstate. Private: import the public names from :mod:`clientstate`.

One concept per module: :mod:`.state` (descriptors), :mod:`.keys`,
:mod:`.token` (the wire format), :mod:`.cookies`, :mod:`.chunks`,
:mod:`.errors`, :mod:`.handler` (the handler protocol, ``Loaded``),
:mod:`.slot`, :mod:`.binding` (the core of ``setup()``), :mod:`.headers`,
:mod:`.config` (argument checks), :mod:`.value` (immutable object styles),
:mod:`.base64url`.
"""
