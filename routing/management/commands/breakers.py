from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aura.redis import sync_client
from routing.gateway.breaker import OPEN_SET, breakers
from routing.models import ProviderEndpoint


class Command(BaseCommand):
    help = "Show circuit breakers that are open, or close one by hand (`--reset ep<ID>`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", metavar="ENDPOINT", help="e.g. ep12 or openai-default")

    def handle(self, *args: Any, **opts: Any) -> None:
        redis = sync_client()
        if opts["reset"]:
            name = opts["reset"]
            if redis.zscore(OPEN_SET, name) is None:
                raise CommandError(f"no open breaker named {name!r}")
            breakers.reset_sync(redis, name)
            self.stdout.write(f"closed the breaker of {name}")
            return
        rows: Any = redis.zrange(OPEN_SET, 0, -1)
        if not rows:
            self.stdout.write("no open breakers")
        for raw in rows:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            state = breakers.state_sync(redis, name)
            label = name
            if name.startswith("ep") and name[2:].isdigit():
                ep = ProviderEndpoint.objects.filter(pk=int(name[2:])).first()
                label = f"{name} ({ep})" if ep else name
            self.stdout.write(f"{label}: {state['state']} until {state['open_until']}")
