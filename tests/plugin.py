"""Loaded first (`-p tests.plugin`), before pytest-django configures Django.

* Points the embedded services at their own data folder (``var/test``) so a test run never
  touches the data of a running ``make run``; with DATABASE_URL / REDIS_URL set, those are
  used instead and nothing is started.
* Blocks every network address except loopback and unix sockets for the whole run.
* Test-only speed-ups live here, never in production settings: password hashing with MD5
  (PBKDF2 dominates fixture time; no test is about the hasher).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AURA_DATA_DIR", str(ROOT / "var" / "test"))
# One test database per run, so concurrent runs (several developers' shells) never collide.
os.environ.setdefault("AURA_TEST_DATABASE_NAME", f"test_aura_{os.getpid()}")
# ...and its own logical Redis database (1-15) of the shared embedded Redis, since tests
# flush it.
os.environ.setdefault("AURA_REDIS_DB", str(1 + os.getpid() % 15))


class NetworkBlocked(RuntimeError):
    pass


def _allowed(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family != socket.AF_UNIX and not _allowed(address):
        raise NetworkBlocked(f"tests may not connect to {address!r}: only loopback is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family != socket.AF_UNIX and not _allowed(address):
        raise NetworkBlocked(f"tests may not connect to {address!r}: only loopback is allowed")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    name = host.decode() if isinstance(host, bytes) else host
    if name not in (None, "localhost", "") and not _is_ip(name):
        raise NetworkBlocked(f"tests may not resolve {name!r}: only loopback is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


socket.socket.connect = _guarded_connect  # type: ignore[method-assign,assignment]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign,assignment]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing(django_test_environment: Any) -> None:
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()  # type: ignore[attr-defined]  # functools.cache
    get_hashers_by_algorithm.cache_clear()  # type: ignore[attr-defined]
