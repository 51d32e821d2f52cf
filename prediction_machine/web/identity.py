"""Who a classroom client is: ids the server draws itself, and the address each one came from.

A client id is drawn by the server (`mint`) and carries its own proof: a random part and an
HMAC of it under a key that never leaves this machine (`recognise` checks it). A browser that
opens the class link again keeps its id, and so its runs, even across a restart of the server;
an id the client made up, or copied from the `pm_client` cookie of a guide it read, is never
recognised, so a new one is drawn instead. The key lives in a file beside the run folders
(mode 0600), because the runs it protects live there too.

Drawing ids is free, so every limit counted per client also has a ceiling per address: the
`Addresses` table remembers the address each client was last seen from, and the per-address
counts (playground sessions, training jobs, disk) add up every client of one address.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from collections import OrderedDict

from prediction_machine.training.curriculum import runs

KEY_FILE = ".client-id-key"  # in the runs folder: 32 random bytes, hex
TEACHER = "teacher-"  # prefix of an id minted for the teacher's token
RANDOM_CHARS = 24  # token_urlsafe(18): 144 random bits
TAG_CHARS = 20  # the HMAC's first 80 bits, in hex
REMEMBERED = 20_000  # clients whose address is remembered; the longest unseen is forgotten first

_key_lock = threading.Lock()
_keys: dict[str, bytes] = {}  # runs folder -> its key, read once


def identity_key() -> bytes:
    """The key that proves an id was drawn here: read from the runs folder, made there the first time.

    If the folder cannot hold it, the key lives in this process only (ids then last until a restart).
    """
    folder = runs.runs_dir()
    with _key_lock:
        if str(folder) not in _keys:
            _keys[str(folder)] = _load_or_make(folder / KEY_FILE)
        return _keys[str(folder)]


def _load_or_make(path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            return bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError):
            return secrets.token_bytes(32)
    except OSError:
        return secrets.token_bytes(32)
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


def _tag(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), "sha256").hexdigest()[:TAG_CHARS]


def mint(teacher: bool = False) -> str:
    """A new client id: '<prefix><24 random characters><tag>' (at most 52 characters)."""
    body = (TEACHER if teacher else "") + secrets.token_urlsafe(18)
    return body + _tag(identity_key(), body)


def recognise(client_id: str) -> bool:
    """Was this id drawn by this server (this runs folder's key)? A made-up id never is."""
    body, tag = client_id[:-TAG_CHARS], client_id[-TAG_CHARS:]
    if len(body) < RANDOM_CHARS:
        return False
    return hmac.compare_digest(tag.encode("utf-8", "replace"), _tag(identity_key(), body).encode())


class Addresses:
    """The address each client was last seen from (a bounded table, safe from any thread)."""

    def __init__(self, size: int = REMEMBERED):
        self.size = size
        self.lock = threading.Lock()
        self.last: OrderedDict[str, str] = OrderedDict()

    def saw(self, client: str, ip: str) -> None:
        with self.lock:
            self.last[client] = ip
            self.last.move_to_end(client)
            while len(self.last) > self.size:
                self.last.popitem(last=False)

    def of(self, client: str | None) -> str | None:
        """The client's address: an API client ("ip:<address>") is its address."""
        if client is None:
            return None
        if client.startswith("ip:"):
            return client[3:]
        with self.lock:
            return self.last.get(client)

    def clients_at(self, ip: str) -> set[str]:
        """Every client last seen from `ip`, its API client included."""
        with self.lock:
            return {c for c, at in self.last.items() if at == ip} | {"ip:" + ip}


def addresses(app) -> Addresses:
    """The app's table (made on first use: the middleware fills it, the routes read it)."""
    state = app.state
    with _key_lock:
        if getattr(state, "addresses", None) is None:
            state.addresses = Addresses()
    return state.addresses
