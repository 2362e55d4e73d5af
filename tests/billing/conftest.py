"""Fixtures of the billing tests: a real SMTP server, and Celery tasks run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aura.celery import app as celery_app
from tests.billing.smtp import SmtpSink, smtp_sink


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpSink]:
    with smtp_sink(settings) as sink:
        yield sink


@pytest.fixture
def eager_celery() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
