"""Transactional email: one helper renders a named email into a multipart message.

Every email kind ``<name>`` has three templates under ``templates/emails/``:
``<name>-subject.txt`` (one line), ``<name>-body.txt`` and ``<name>-body.html``. Each kind
has one small function next to its domain (``billing.alerts``, ``billing.reports``) that
builds the context and calls ``send``; emails are sent from Celery tasks, never inside a
request. HTML bodies use inline styles only (mail clients drop stylesheets and scripts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string


def _dedupe(addresses: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for raw in addresses:
        address = (raw or "").strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def make_message(name: str, *, to: str, context: Mapping[str, Any]) -> EmailMultiAlternatives:
    ctx = dict(context)
    # Subjects are one line: a stray newline in a subject is a header-injection error.
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", ctx).split())
    text = render_to_string(f"emails/{name}-body.txt", ctx)
    html = render_to_string(f"emails/{name}-body.html", ctx)
    msg = EmailMultiAlternatives(subject, text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
    msg.attach_alternative(html, "text/html")
    return msg


def send(
    name: str,
    *,
    to: Iterable[str],
    context: Mapping[str, Any],
    per_recipient: Callable[[str], Mapping[str, Any]] | None = None,
) -> list[str]:
    """Send email ``name`` to each address (one message per recipient, so recipients do not
    see each other's addresses) over one SMTP connection; returns the addresses sent to.

    Raises on SMTP failure so the calling task can release its claim and retry.
    """
    recipients = _dedupe(to)
    if not recipients:
        return []
    messages = [
        make_message(
            name,
            to=address,
            context={**context, **per_recipient(address)} if per_recipient else context,
        )
        for address in recipients
    ]
    with get_connection() as connection:
        connection.send_messages(messages)
    return recipients
