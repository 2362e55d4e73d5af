"""The test run can reach loopback and unix sockets only; anything else fails at once."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from tests.plugin import NetworkBlocked


def test_connecting_to_a_private_address_is_blocked_before_any_packet_leaves():
    # 10.255.255.1 is unroutable: a real connect would hang until the timeout and raise
    # TimeoutError/OSError, never NetworkBlocked.
    with pytest.raises(NetworkBlocked, match=r"10\.255\.255\.1"):
        socket.create_connection(("10.255.255.1", 80), timeout=5)


def test_connect_ex_to_a_public_address_is_blocked():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlocked):
        s.connect_ex(("1.1.1.1", 443))


def test_connecting_by_hostname_is_blocked_without_resolving_it():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlocked):
        s.connect(("example.com", 80))


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this kernel")
def test_connecting_to_a_public_ipv6_address_is_blocked():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlocked):
        s.connect(("2606:4700:4700::1111", 443, 0, 0))


def test_resolving_a_public_hostname_is_blocked():
    with pytest.raises(NetworkBlocked, match=r"api\.openai\.com"):
        socket.getaddrinfo("api.openai.com", 443)


def test_an_http_client_cannot_reach_the_internet():
    with pytest.raises(NetworkBlocked):
        httpx.get("https://api.openai.com/v1/models", timeout=5)


@pytest.fixture
def loopback_server():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)

    def answer_once() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello")

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    yield server.getsockname()
    thread.join(timeout=5)
    server.close()


def test_loopback_connections_work(loopback_server):
    with socket.create_connection(loopback_server, timeout=5) as conn:
        assert conn.recv(5) == b"hello"


def test_localhost_resolves_and_connects(loopback_server):
    _, port = loopback_server
    assert socket.getaddrinfo("localhost", port)
    with socket.create_connection(("localhost", port), timeout=5) as conn:
        assert conn.recv(5) == b"hello"
