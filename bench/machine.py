"""Where a benchmark ran: the lines every report starts with (machine, CPython, OpenSSL, packages, git)."""

from __future__ import annotations

import datetime
import os
import platform
import ssl
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "clientstate", "msgspec", "cryptography", "itsdangerous", "starlette", "flask", "werkzeug",
    "django", "litestar", "pyramid", "webob", "uvicorn", "httptools", "h11", "waitress",
)


def machine_info(packages: Sequence[str] = PACKAGES) -> dict[str, Any]:
    """Where and with what this run happens: CPU, Python, OpenSSL, the versions of ``packages``, git commit."""
    from cryptography.hazmat.backends.openssl.backend import backend

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_openssl": ssl.OPENSSL_VERSION,
        "cryptography_openssl": backend.openssl_version_text(),
        "packages": versions,
        "git": _git_state(),
        "loadavg_start": os.getloadavg(),
    }


def machine_lines(meta: dict[str, Any]) -> list[str]:
    """Markdown list lines for a report's top from :func:`machine_info`'s ``meta``: machine, CPython, packages, git."""
    return [
        f"- machine: {meta['cpu']}, nproc={meta['nproc']} (affinity {meta['affinity']}), {meta['platform']}",
        f"- CPython {meta['python']} ({meta['python_openssl']}); cryptography links {meta['cryptography_openssl']}",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()),
        f"- clientstate source: git {meta['git']}",
    ]


def _git_state() -> str:
    """``<short commit>`` of the repository, ``+ uncommitted changes in clientstate/`` if any."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "clientstate"], cwd=root, capture_output=True,
            text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} + uncommitted changes in clientstate/" if dirty else commit
