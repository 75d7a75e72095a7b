"""An example of ``examples/<framework>/`` as a real server process on a free loopback port.

Each example prints ``serving http://127.0.0.1:PORT/`` once it listens
(``--port 0``: the OS picks the port). Waits are bounded.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from clientstate import Keyring, generate_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STARTUP_TIMEOUT = 30.0
#: A real key: the examples, like any server, refuse the public test keys.
KEYRING = Keyring(generate_key(7))


class ExampleServer:
    """``python examples/<folder>/<file> --port 0`` with ``CLIENTSTATE_KEYS`` set; ``url`` once it serves."""

    def __init__(self, relative: str) -> None:
        env = {**os.environ, "CLIENTSTATE_KEYS": KEYRING.to_text(), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / relative), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=EXAMPLES.parent,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_for_url()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.output.append(line)
            if line.startswith("serving http://"):
                return line.split(" ", 1)[1].strip().rstrip("/")
        self.stop()
        raise AssertionError(f"the example did not start within {STARTUP_TIMEOUT} s: {''.join(self.output)}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
