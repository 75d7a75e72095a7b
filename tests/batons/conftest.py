"""Fixtures of the baton tests: a frozen clock, and a PostgreSQL server that must be there."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from clientstate.testing import FrozenClock
from tests.batons.support import T0

PG_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5"
SERVICES = Path(__file__).resolve().parents[3] / "shared" / "services.sh"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def _reachable() -> bool:
    try:
        with psycopg.connect(PG_CONNINFO) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_conninfo() -> str:
    """The test server's connection string; starts it with ``shared/services.sh`` if it is down. Never skips."""
    if not _reachable():
        assert SERVICES.exists(), f"PostgreSQL is down on 127.0.0.1:5432 and {SERVICES} is missing"
        done = subprocess.run(["bash", str(SERVICES)], capture_output=True, text=True, timeout=300, check=False)
        assert _reachable(), f"PostgreSQL did not come up: {done.stderr[-2000:]}"
    return PG_CONNINFO
