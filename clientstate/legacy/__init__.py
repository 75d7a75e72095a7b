"""Migration without logouts: accept the session cookies a site issued before clientstate.

Wrap the handler for a transition period::

    from clientstate.legacy import accept_legacy, flask_cookie

    handler = accept_legacy(
        client_stored(keyring, name="__Host-session"),
        flask_cookie(app.secret_key, convert=lambda old: Session(user=old["user"]) if "user" in old else None),
    )

A valid legacy cookie loads, is converted into the typed state by your
function, and the response replaces it with a clientstate cookie (deleting
the legacy cookie when its name differs); an invalid one (forged, wrong
secret, expired by its own rules) loads nothing and is deleted, with a stable
error kind in ``slot.error``. Once a request carries the clientstate cookie
its legacy cookie is never read again. Formats: :func:`flask_cookie`,
:func:`starlette_cookie`, :func:`django_cookie`, each verified with the
framework's own library (:mod:`clientstate.legacy.formats`); the wrapper is
:func:`accept_legacy` (:mod:`clientstate.legacy.handler`).
"""

from __future__ import annotations

from clientstate.legacy.formats import Converter, LegacyCookie, django_cookie, flask_cookie, starlette_cookie
from clientstate.legacy.handler import LegacyHandler, LegacyLoaded, accept_legacy

__all__ = [
    "Converter",
    "LegacyCookie",
    "LegacyHandler",
    "LegacyLoaded",
    "accept_legacy",
    "django_cookie",
    "flask_cookie",
    "starlette_cookie",
]
