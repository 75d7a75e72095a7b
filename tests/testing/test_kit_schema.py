"""check_schema_snapshot: written on the first run, passes while shapes hold, fails on a change without a bump."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec
import pytest

from clientstate import ConfigurationError, Migration, State
from clientstate.testing import check_schema_snapshot


class V1(msgspec.Struct):
    user: str
    visits: int = 0


class V1Renamed(msgspec.Struct):  # another class name, the same shape
    user: str
    visits: int = 0


class V1Changed(msgspec.Struct):
    user: str
    visits: str = ""


class V1Tighter(msgspec.Struct):
    user: Annotated[str, msgspec.Meta(max_length=10)]
    visits: int = 0


def test_first_run_writes_then_passes(tmp_path: Path) -> None:
    snapshot = tmp_path / "schemas" / "session.json"
    check_schema_snapshot(State("session", V1), snapshot)
    content = json.loads(snapshot.read_text())
    assert content["state"] == "session"
    assert list(content["versions"]) == ["1"]
    assert len(content["versions"]["1"]) == 16
    before = snapshot.read_text()
    check_schema_snapshot(State("session", V1Renamed), snapshot)  # same shape: passes, file untouched
    assert snapshot.read_text() == before


@pytest.mark.parametrize("changed", [V1Changed, V1Tighter])
def test_a_changed_shape_at_the_same_version_fails(tmp_path: Path, changed: type) -> None:
    snapshot = tmp_path / "s.json"
    check_schema_snapshot(State("session", V1), snapshot)
    with pytest.raises(AssertionError, match="schema version 1 changed shape"):
        check_schema_snapshot(State("session", changed), snapshot)


def test_a_bump_with_a_migration_passes_and_records_the_new_version(tmp_path: Path) -> None:
    snapshot = tmp_path / "s.json"
    check_schema_snapshot(State("session", V1), snapshot)
    bumped = State("session", V1Changed, version=2, migrations=[Migration(1, V1, lambda old: V1Changed(old.user))])
    check_schema_snapshot(bumped, snapshot)
    assert sorted(json.loads(snapshot.read_text())["versions"]) == ["1", "2"]
    wrong_migration = State("session", V1Changed, version=2, migrations=[Migration(1, V1Tighter, lambda o: o)])
    with pytest.raises(AssertionError, match="version 1 changed shape"):
        check_schema_snapshot(wrong_migration, snapshot)


def test_another_states_snapshot_and_a_bad_file_are_refused(tmp_path: Path) -> None:
    snapshot = tmp_path / "s.json"
    check_schema_snapshot(State("session", V1), snapshot)
    with pytest.raises(AssertionError, match="snapshot of state 'session', not 'cart'"):
        check_schema_snapshot(State("cart", V1), snapshot)
    snapshot.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not a schema snapshot"):
        check_schema_snapshot(State("session", V1), snapshot)
    with pytest.raises(ConfigurationError, match="needs a State"):
        check_schema_snapshot("session", snapshot)  # type: ignore[arg-type]
