"""``check_schema_snapshot``: fail CI when a state's type changed shape without a schema version bump.

Server-side state is stored with the fingerprint of its type's shape
(:func:`clientstate._core.state.fingerprint`); a record written by a type of
another shape at the same schema version loads as ``schema_mismatch``. This
check catches the mistake before it ships: it keeps, in a small JSON file
committed with the code, the fingerprint of every schema version a state has
had, and fails when a version's type no longer has the recorded shape.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from clientstate._core.errors import ConfigurationError
from clientstate._core.state import State

__all__ = ["check_schema_snapshot"]


def check_schema_snapshot(descriptor: State[Any], path: str | os.PathLike[str]) -> None:
    """Compare ``descriptor``'s type shapes with the snapshot file at ``path``; write what is new.

    The file is JSON: ``{"state": <name>, "versions": {"<version>": "<fingerprint hex>", ...}}``.
    On the first run it is created. A version the file does not know yet (a
    bump, or a migration added) is added to it — commit the updated file. A
    version the file knows must have the same fingerprint.

    Args:
        descriptor: the :class:`~clientstate.State`.
        path: the snapshot file (e.g. ``tests/schemas/session.json``).

    Raises:
        AssertionError: a known schema version's type changed shape (bump
            ``version`` and add a ``Migration`` instead), or the file holds
            another state's name.
        ConfigurationError: ``descriptor`` is not a State, or the file is not a valid snapshot.
    """
    if not isinstance(descriptor, State):
        raise ConfigurationError(f"check_schema_snapshot needs a State, got {type(descriptor).__name__}")
    target = Path(path)
    current = {str(version): fingerprint.hex() for version, fingerprint in descriptor.fingerprints.items()}
    if target.exists():
        try:
            known = json.loads(target.read_text(encoding="utf-8"))
            recorded: dict[str, str] = dict(known["versions"])
            name = known["state"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{target} is not a schema snapshot: {exc}") from None
        if name != descriptor.name:
            raise AssertionError(f"{target} is the snapshot of state {name!r}, not {descriptor.name!r}")
        changed = [v for v in sorted(recorded, key=int) if v in current and current[v] != recorded[v]]
        if changed:
            versions = ", ".join(changed)
            raise AssertionError(
                f"state {descriptor.name!r}: the type of schema version {versions} changed shape since {target} "
                f"was written; stored state of that version would load as schema_mismatch. Bump the State's "
                f"version and add a Migration from the old type instead"
            )
        if all(v in recorded for v in current):
            return
        recorded.update(current)
    else:
        recorded = current
    _write(target, {"state": descriptor.name, "versions": dict(sorted(recorded.items(), key=lambda kv: int(kv[0])))})


def _write(target: Path, content: dict[str, Any]) -> None:
    """Write ``content`` to ``target`` atomically (a temporary file renamed over it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=target.name, dir=target.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(content, file, indent=2)
        file.write("\n")
    os.replace(temporary, target)
