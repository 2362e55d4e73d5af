"""A real SMTP server (aiosmtpd) on a random loopback port that collects what it receives.

Use ``smtp_sink(settings)`` from a fixture: it starts the server and points Django's SMTP
email backend at it for the test::

    @pytest.fixture
    def smtp(settings: Any) -> Iterator[SmtpSink]:
        with smtp_sink(settings) as sink:
            yield sink
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

# aiosmtpd logs every SMTP command at INFO.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return str(part.get_content())
        raise AssertionError(f"no {content_type} part in {self.message.get_content_type()}")

    @property
    def text(self) -> str:
        return self.part("text/plain")

    @property
    def html(self) -> str:
        return self.part("text/html")


@dataclass
class SmtpSink:
    """The messages the server accepted, in arrival order (thread-safe)."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    message=parsed,
                )
            )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    @property
    def recipients(self) -> list[str]:
        with self._lock:
            return sorted(r for m in self.messages for r in m.rcpt_tos)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until ``count`` messages arrived (for other processes' sends), bounded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} message(s) within {timeout}s, got {len(self.messages)}"
        )


class _LoopbackController(Controller):
    """aiosmtpd's Controller on a socket bound to port 0: no free-port race."""

    def __init__(self, handler: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        super().__init__(handler, hostname="127.0.0.1", port=port, server_hostname="smtp.aura.test")

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    controller = _LoopbackController(sink)
    controller.start()
    sink.port = controller.port
    try:
        yield sink
    finally:
        controller.stop()


@contextlib.contextmanager
def smtp_sink(settings: Any) -> Iterator[SmtpSink]:
    """Start the server and point Django's email settings at it (pytest-django ``settings``)."""
    with smtp_server() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = sink.host
        settings.EMAIL_PORT = sink.port
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_USE_SSL = False
        settings.EMAIL_TIMEOUT = 5
        yield sink
