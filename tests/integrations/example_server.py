"""An example of ``examples/<framework>/`` as a real server process on a free loopback port.

Each example prints ``serving http://127.0.0.1:PORT/`` once it listens
(``--port 0``: the OS picks the port). Waits are bounded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from clientstate import Keyring, generate_key
from tests.servers import ServerProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STARTUP_TIMEOUT = 30.0
#: A real key: the examples, like any server, refuse the public test keys.
KEYRING = Keyring(generate_key(7))


class ExampleServer(ServerProcess):
    """``python examples/<folder>/<file> --port 0`` with ``CLIENTSTATE_KEYS`` set; ``url`` once it serves.

    :meth:`stop` sends SIGTERM, then SIGKILL after 10 s.
    """

    def __init__(self, relative: str) -> None:
        super().__init__(
            [sys.executable, str(EXAMPLES / relative), "--port", "0"],
            env={"CLIENTSTATE_KEYS": KEYRING.to_text()}, cwd=EXAMPLES.parent, startup_timeout=STARTUP_TIMEOUT,
        )
