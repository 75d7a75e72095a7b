"""The README's batons section stays true: its Python example runs, and its tables name every kind and status."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

from clientstate.batons import BatonErrorKind, Streams
from clientstate.demo.transactions import _STATUS

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    """The README's "## Batons" section, up to the next level-2 heading."""
    text = README.read_text()
    start = text.index("## Batons")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_the_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", section(), flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # our own documentation
    streams = namespace["streams"]
    assert isinstance(streams, Streams)
    assert streams.closed is True
    assert namespace["next_baton"] != namespace["baton"]
    database = namespace["database"]
    assert isinstance(database, Path)
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT body FROM notes").fetchall() == [("hello",)]  # committed
    connection.close()
    shutil.rmtree(database.parent)


def test_every_kind_and_demo_status_is_documented() -> None:
    text = " ".join(section().split())
    for kind in BatonErrorKind:
        assert f"`{kind.value}`" in text, kind
    for kind, status in _STATUS.items():  # "`kind` 400", "`kind` and `other` 403" or "`other` and `kind` 403"
        pattern = rf"`{kind.value}`(?: and `\w+`)? {status}\b|`\w+` and `{kind.value}` {status}\b"
        assert re.search(pattern, text), (kind, status)
