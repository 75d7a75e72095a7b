"""Command line: ``python -m clientstate {demo,keygen,inspect,sessions}``.

* ``demo`` serves the example app over real HTTP (see :mod:`clientstate.demo`),
  its state in the cookie or, with ``--store``, in a store.
* ``keygen`` prints a new key in the text form ``CLIENTSTATE_KEYS`` accepts,
  or, with ``--add-to``, a whole keyring with a new key added for rotation.
* ``inspect`` verifies (or decrypts) a cookie with the configured keys and
  prints what it holds; with ``--no-verify`` it prints only what can be read
  without keys. It exits 1 with the error kind when the cookie would not load.
* ``sessions --store URL`` administers server-stored sessions:
  ``list PRINCIPAL`` (``--json`` for one JSON object per line), ``end
  PRINCIPAL`` (log out everywhere) and ``sweep [--limit N]`` (delete expired
  records). Needs no keys. Exits 0, 1 when the store does not answer, 2 on a
  bad store URL or a principal no session can have (empty, over 1024 bytes,
  NUL, not valid UTF-8). Everything printed from the store is escaped with
  :func:`terminal_safe` (principals are user-chosen text).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec

from clientstate._core.errors import ConfigurationError, KeyFormatError, LoadError, StoreUnavailable
from clientstate._core.keys import ENV_VAR, MIN_SECRET_BYTES, Keyring, generate_key
from clientstate._core.state import Migration, State
from clientstate._core.store import SessionInfo
from clientstate._core.token import Mode, Peeked, peek
from clientstate._handlers.client_stored import client_stored

__all__ = ["main", "terminal_safe"]

#: Records one sweep batch deletes at most.
SWEEP_BATCH = 1000

_MODE_NAMES = {
    Mode.AUTHENTICATED: "authenticated (HMAC-SHA256)",
    Mode.ENCRYPTED: "encrypted (AES-256-GCM)",
}


def _utc(seconds: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return f"{seconds} (beyond the calendar range)"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _split_cookie(text: str) -> tuple[str | None, str]:
    """Accept ``VALUE``, ``NAME=VALUE`` or a whole ``Set-Cookie`` line; return (name, value)."""
    text = text.strip()
    if text.lower().startswith("set-cookie:"):
        text = text[len("set-cookie:"):].strip()
    text = text.split(";", 1)[0].strip()
    # Tokens are base64url, which never contains '=': a '=' separates a name.
    name, sep, value = text.partition("=")
    if not sep:
        name, value = "", text
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        value = value[1:-1]  # one pair of double quotes, as the server-side parser unwraps
    return (name.strip() or None), value


# Characters a hostile cookie could use to rewrite a terminal: C0 and C1 controls,
# DEL, bidirectional overrides and isolates and other format characters, and
# line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def terminal_safe(text: str) -> str:
    """``text`` with every control, format (bidi) and separator character escaped as ``\\xNN``/``\\uNNNN``.

    Printable text, including non-ASCII letters, passes unchanged; the result
    holds no character that moves the cursor, changes colours or reorders text.
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def _say(out: TextIO, line: str) -> None:
    """Print one line of output, escaped with :func:`terminal_safe` (every line may hold cookie content)."""
    print(terminal_safe(line), file=out)


def _print_fields(out: TextIO, fields: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        _say(out, f"{key + ':':<{width + 1}} {value}")


def _state_json(payload: bytes) -> str:
    try:
        value: Any = msgspec.msgpack.decode(payload)
        return msgspec.json.encode(value).decode()
    except (msgspec.DecodeError, msgspec.EncodeError, TypeError, ValueError, RecursionError) as exc:
        # The payload may be untrusted (--no-verify): any content must print, not crash.
        return f"<payload of {len(payload)} bytes that does not print as JSON: {exc}>"


def _instant(label: str, instant: int | None, now: float, none: str) -> tuple[str, str]:
    if instant is None:
        return label, none
    left = instant - now
    status = f"in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
    return label, f"{_utc(instant)} ({status})"


def _time_fields(issued_at: int, expires_at: int | None, now: float) -> list[tuple[str, str]]:
    return [
        ("issued-at", f"{_utc(issued_at)} (age {now - issued_at:.0f} s)"),
        _instant("expires-at", expires_at, now, "none in the token (a server applies issued-at + its expires_in)"),
    ]


def _fail(err: TextIO, error: LoadError) -> int:
    _say(err, f"error: {error.kind.value}: {error.detail}")
    return 1


def _inspect(args: argparse.Namespace, out: TextIO, err: TextIO, now: float) -> int:
    name, value = _split_cookie(args.cookie)
    cookie_name = args.cookie_name or name
    if not value:
        _say(err, "error: the cookie value is empty: a server reads that as no cookie at all")
        return 1
    seen = peek(value)
    if isinstance(seen, LoadError):
        return _fail(err, seen)
    header = [
        ("version", f"0x{seen.mode.value:02x}"),
        ("mode", _MODE_NAMES[seen.mode]),
        ("key id", str(seen.key_id)),
        ("length", f"{len(value)} characters"),
    ]
    if args.no_verify:
        return _show_unverified(out, seen, header, now)
    if cookie_name is None or args.state_name is None:
        _say(
            err,
            "error: verifying needs the cookie name (pass NAME=VALUE or --cookie-name) and "
            "--state-name, which are bound into the token; or use --no-verify",
        )
        return 2
    try:
        keyring = Keyring.from_text(args.keys) if args.keys else Keyring.from_env(args.keys_env)
    except KeyFormatError as exc:
        _say(err, f"error: keys: {exc}")
        return 2
    try:
        handler = client_stored(
            keyring, name=cookie_name, encrypted=seen.mode is Mode.ENCRYPTED,
            expires_in=args.expires_in, clock_skew=args.clock_skew,
        )
        versions = args.schema_version or [1]
        descriptor: State[Any] = State(
            args.state_name, Any, version=versions[0],
            migrations=[Migration(v, Any, _same) for v in versions[1:]],
        )
        codec = handler.codec(descriptor)
    except ConfigurationError as exc:
        _say(err, f"error: {exc}")
        return 2
    opened = codec.open(value)
    if isinstance(opened, LoadError):
        return _fail(err, opened)
    fields = [
        *header,
        ("verified", f"yes, cookie {cookie_name!r}, state {args.state_name!r}, schema version {opened.schema_version}"),
        *_time_fields(opened.issued_at, opened.expires_at, now),
    ]
    deadline = handler.deadline(opened.issued_at, opened.expires_at)
    if args.expires_in is not None:
        fields.append(_instant("deadline", deadline, now, "none"))
    fields.append(("state", _state_json(opened.payload)))
    _print_fields(out, fields)
    # The handler's own time checks, so inspect and a server agree.
    late = handler.check_times(opened.issued_at, deadline, now)
    return 0 if late is None else _fail(err, late)


def _same(value: Any) -> Any:
    return value


def _show_unverified(out: TextIO, seen: Peeked, header: list[tuple[str, str]], now: float) -> int:
    fields = [*header, ("verified", "no (--no-verify): anything below may be forged")]
    if seen.mode is Mode.ENCRYPTED:
        fields.append(("state", "<encrypted: needs the keys>"))
    else:
        assert seen.issued_at is not None
        assert seen.payload is not None
        fields += _time_fields(seen.issued_at, seen.expires_at, now)
        fields.append(("state", _state_json(seen.payload)))
    _print_fields(out, fields)
    return 0


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port: 0 (any free one) to 65535")
    return port


def _keygen(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.add_to is None:
        key = generate_key(1 if args.key_id is None else args.key_id, args.bytes)
        print(key.to_text(), file=out)
        return 0
    try:
        ring = Keyring.from_text(args.add_to)
    except KeyFormatError as exc:
        print(f"error: --add-to: {exc}", file=err)
        return 2
    used = {k.key_id for k in ring.keys}
    if args.key_id is not None:
        if args.key_id in used:
            print(f"error: --key-id {args.key_id} is already in the keyring given to --add-to", file=err)
            return 2
        free = [args.key_id]
    else:
        free = [i for i in range(256) if i not in used and i > max(used)] or [
            i for i in range(256) if i not in used
        ]
    if not free:
        print("error: all 256 key ids are in use; retire a key first", file=err)
        return 2
    new = generate_key(free[0], args.bytes)
    print(f"{ring.to_text()} {new.to_text()}", file=out)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from clientstate.demo import run

    try:
        run(args.host, args.port, args.interface, encrypted=args.encrypted, store=args.store)
    except (KeyFormatError, ConfigurationError) as exc:
        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    return 0


def _session_line(info: SessionInfo) -> str:
    return (
        f"{info.handle}  created {_utc(info.created_at)}  last active {_utc(info.last_touch)}  "
        f"ends {_utc(min(info.idle_deadline, info.absolute_deadline))} "
        f"(idle deadline {_utc(info.idle_deadline)}, absolute {_utc(info.absolute_deadline)})"
    )


def _sessions(args: argparse.Namespace, out: TextIO, err: TextIO, now: float) -> int:
    from clientstate._handlers.server_stored import principal_problem
    from clientstate._handlers.sessions import Sessions
    from clientstate.demo import open_store, redact_url, store_url

    label = redact_url(store_url(args.store))
    if args.action != "sweep":
        problem = principal_problem(args.principal)  # the handler's rule: checked before the store is opened
        if problem is not None:
            _say(err, f"error: PRINCIPAL {args.principal!r:.60} is not one a session can have: {problem}")
            return 2
    try:
        store = open_store(args.store)
    except ConfigurationError as exc:
        _say(err, f"error: {exc}")
        return 2
    try:
        admin = Sessions(store)
        if args.action == "list":
            infos = admin.list(args.principal, now)
            if args.json:
                for info in infos:
                    print(msgspec.json.encode(info).decode(), file=out)  # a hex handle and integers only
                return 0
            _say(out, f"{len(infos)} session(s) of {args.principal!r} in {label}")
            for info in infos:
                _say(out, _session_line(info))
            return 0
        if args.action == "end":
            ended = admin.end(args.principal)
            _say(out, f"ended {ended} session(s) of {args.principal!r} in {label}")
            return 0
        swept = 0
        while swept < args.limit:
            batch = min(SWEEP_BATCH, args.limit - swept)
            done = admin.sweep(batch, now)
            swept += done
            if done < batch:
                break
        _say(out, f"swept {swept} expired record(s) from {label}")
        return 0
    except StoreUnavailable as exc:
        _say(err, f"error: store unavailable: {exc}")
        return 1
    except ConfigurationError as exc:  # a bad argument the store itself refused: a usage error too
        _say(err, f"error: {exc}")
        return 2
    finally:
        store.close()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 1 << 40:
        raise argparse.ArgumentTypeError(f"must be from 1 to {1 << 40}, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m clientstate",
        description="clientstate: typed session state in authenticated or encrypted cookies.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="serve the example app over HTTP",
        description="Serve the example app (JSON API at /api/*, a page at /) over real HTTP. "
        f"Keys come from {ENV_VAR} when set, else a development key is generated.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    demo.add_argument("--port", type=_port, default=8000,
                      help="TCP port, 0 for any free one (default %(default)s)")
    demo.add_argument("--interface", choices=("asgi", "wsgi"), default="asgi",
                      help="asgi: uvicorn; wsgi: waitress (default %(default)s)")
    demo.add_argument("--encrypted", action="store_true",
                      help="encrypt the cookie (AES-256-GCM) instead of only authenticating it")
    demo.add_argument("--store", metavar="STORE", default=None,
                      help="keep the state in a store behind a signed session-id cookie: memory, sqlite "
                      "(the file clientstate-demo.db here), redis (redis://127.0.0.1:6379/0), postgres "
                      "(postgresql://postgres@127.0.0.1:5432/test) or a store URL such as "
                      "sqlite:///path/to/file.db; default: the state in the cookie")

    keygen = commands.add_parser(
        "keygen", help=f"print a new key in the {ENV_VAR} text form",
        description=f"Print a new random key as '<key id>:<base64url secret>', the form {ENV_VAR} "
        "accepts. With --add-to, print the given keyring plus a new key with the next free id, "
        "not yet current (the first step of a rotation).",
    )
    keygen.add_argument("--key-id", type=int, default=None,
                        help="key id, 0-255 (default 1; with --add-to, the next free id)")
    keygen.add_argument("--bytes", type=int, default=MIN_SECRET_BYTES,
                        help=f"secret length in bytes, at least {MIN_SECRET_BYTES} (default %(default)s)")
    keygen.add_argument("--add-to", metavar="KEYRING",
                        help=f"an existing keyring in text form, e.g. \"${ENV_VAR}\"")

    inspect = commands.add_parser(
        "inspect", help="verify or decrypt a cookie and print what it holds",
        description="Verify (authenticated mode) or decrypt (encrypted mode) a cookie with the "
        f"keys in {ENV_VAR} (or --keys) and print its version, mode, key id, issued-at, expiry "
        "and state as JSON. Exits 1 with the error kind if the cookie would not load.",
    )
    inspect.add_argument("cookie", metavar="COOKIE",
                         help="the cookie value, NAME=VALUE, or a whole Set-Cookie line")
    inspect.add_argument("--cookie-name", help="the cookie's name (bound into the token)")
    inspect.add_argument("--state-name", help="the State's name (bound into the token)")
    inspect.add_argument("--schema-version", type=int, action="append", metavar="N",
                         help="schema version(s) to accept, current first; repeatable (default 1)")
    inspect.add_argument("--keys", metavar="KEYRING",
                         help=f"keyring text; default: the {ENV_VAR} environment variable")
    inspect.add_argument("--keys-env", default=ENV_VAR, metavar="VAR",
                         help="environment variable holding the keyring (default %(default)s)")
    inspect.add_argument("--expires-in", type=int, metavar="SECONDS", default=None,
                         help="the handler's expires_in: also fail if issued longer ago than this")
    inspect.add_argument("--clock-skew", type=int, default=60, metavar="SECONDS",
                         help="allowed future issued-at (default %(default)s)")
    inspect.add_argument("--no-verify", action="store_true",
                         help="print only what is readable without keys (unverified)")

    sessions = commands.add_parser(
        "sessions", help="list or end a principal's server-stored sessions, or sweep a store",
        description="Administer the sessions of a store (what server_stored(..., principal=...) keeps): "
        "list a principal's unexpired sessions, end them all (log out everywhere), or delete expired "
        "records. Needs no keys. Exit status: 0 done, 1 the store did not answer, 2 a bad store URL or "
        "principal.",
    )
    sessions.add_argument("--store", required=True, metavar="URL",
                          help="the store: a URL (sqlite:///file.db, redis://host:6379/0, "
                          "postgresql://user@host/db, mysql://user@host/db) or the demo's words "
                          "sqlite, redis, postgres")
    actions = sessions.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="print a principal's unexpired sessions, oldest first",
                                 description="Print a principal's unexpired sessions, oldest first: handle, "
                                 "creation, last activity and deadlines (UTC).")
    listing.add_argument("principal", metavar="PRINCIPAL", help="whose sessions (the application's user id)")
    listing.add_argument("--json", action="store_true",
                         help="one JSON object per session and line (handle, created_at, last_touch, "
                         "idle_deadline, absolute_deadline: seconds since the epoch)")
    end = actions.add_parser("end", help="delete every session of a principal (log out everywhere)",
                             description="Delete every session of a principal: each of its cookies stops "
                             "working at its next request.")
    end.add_argument("principal", metavar="PRINCIPAL", help="whose sessions (the application's user id)")
    sweep = actions.add_parser("sweep", help="delete expired records",
                               description=f"Delete expired sessions and tombstones, in batches of at most "
                               f"{SWEEP_BATCH}, until none is left or --limit are deleted.")
    sweep.add_argument("--limit", type=_positive, default=100_000, metavar="N",
                       help="delete at most N records (default %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 cookie error or store down, 2 usage error)."""
    import time

    stream = sys.stdout if out is None else out
    # Errors go to stderr, so that output captured by a shell (`export CLIENTSTATE_KEYS="$(... keygen ...)"`,
    # `sessions list --json`) is never an error message; a given `out` takes both, for tests.
    errors = sys.stderr if out is None else out
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        try:
            return _keygen(args, stream, errors)
        except KeyFormatError as exc:
            print(f"error: {exc}", file=errors)
            return 2
    if args.command == "inspect":
        return _inspect(args, stream, errors, time.time())
    if args.command == "sessions":
        return _sessions(args, stream, errors, time.time())
    return _demo(args)
