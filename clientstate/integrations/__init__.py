"""Framework integrations, one module per framework, each an optional extra.

* :mod:`clientstate.integrations.starlette` (``pip install 'clientstate[starlette]'``):
  middleware and guards for Starlette.
* :mod:`clientstate.integrations.fastapi` (``clientstate[fastapi]``): the same,
  plus typed dependencies and an OpenAPI cookie security scheme.
* :mod:`clientstate.integrations.flask` (``clientstate[flask]``): an extension
  with typed per-request state, guards, and a ``SessionInterface`` for ``flask.session``.
* :mod:`clientstate.integrations.django` (``clientstate[django]``): middleware,
  decorators, and a session engine for ``SESSION_ENGINE``.
* :mod:`clientstate.integrations.litestar` (``clientstate[litestar]``): a
  plugin with dependency injection and guards.

Each is thin: the WSGI/ASGI middleware of :mod:`clientstate.wsgi` /
:mod:`clientstate.asgi` where the framework lets an application be wrapped,
and otherwise the core's drive functions (:mod:`clientstate._core.drive`), so
the behaviour is the core's: ``Set-Cookie`` only on change, load errors as
values, the application's headers untouched, ``Vary: Cookie`` and
``Cache-Control: private``, nothing committed on 5xx. Migrating from a
framework's own session cookies: :mod:`clientstate.legacy`.
"""
