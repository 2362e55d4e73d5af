"""Telling every process that routing configuration changed.

Any write that affects routing (catalog, endpoints, credentials, policy, budgets) calls
``config_changed()``. On commit it bumps a version counter in Redis and runs this process's
listeners (the gateway's context cache clears itself); every other process compares its
cached version with Redis at most once per second (``routing.gateway.context``), so a change
reaches all workers within about a second, and within the context TTL if Redis is down.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from aura.redis import sync_client

log = logging.getLogger(__name__)

VERSION_KEY = "aura:config:version"

_listeners: list[Callable[[], None]] = []


def on_change(listener: Callable[[], None]) -> None:
    """Run ``listener`` in this process whenever a change is published from it."""
    _listeners.append(listener)


def _publish_change() -> None:
    for listener in _listeners:
        listener()
    try:
        client = sync_client()
        # A counter Redis lost would restart at 1 and could climb back to the version a
        # process last saw, which would then miss changes until the context TTL: restart it
        # at a random point instead.
        client.set(VERSION_KEY, secrets.randbelow(10**12), nx=True)
        client.incr(VERSION_KEY)
    except Exception:
        log.warning("config change not published (Redis); workers catch up within the TTL")


def config_changed() -> None:
    """Call after any write that affects routing (catalog, endpoints, credentials, policy).

    Published on commit, so no worker rebuilds its cache from a not-yet-committed state.
    """
    from django.db import transaction

    transaction.on_commit(_publish_change)
