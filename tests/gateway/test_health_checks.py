"""The health round against fake upstreams over loopback: probes, hysteresis, flips, the
board the gateway routes by, alerts, BYOK targets and billed completion probes."""

from __future__ import annotations

import socket
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from aura.redis import sync_client
from billing.models import UsageRecord
from monitoring.alerts import alerts_notify, flips_process
from monitoring.health import health_round
from monitoring.models import Alert, EndpointHealth, HealthCheck, HealthFlip
from monitoring.state import BOARD_KEY, parse_board
from monitoring.state import board as shared_board
from routing.catalog.services import credential_create
from routing.models import Provider, ProviderEndpoint
from tenants.models import Membership, Role
from tests.billing.smtp import SmtpSink
from tests.billing.test_celery_worker import private_queue, smtp, wait_for, worker
from tests.gateway.conftest import Env, add_model

__all__ = ["private_queue", "smtp", "worker"]  # fixtures of the real-worker test


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_local_provider() -> Provider:
    """Ollama-like: free, local, high quality on paper, and nothing listening."""
    provider = Provider.objects.create(
        slug="deadllama", name="deadllama", wire_format="ollama", is_local=True
    )
    ProviderEndpoint.objects.create(
        provider=provider,
        name="main",
        base_url=f"http://127.0.0.1:{closed_port()}",
        connect_timeout=1,
        max_retries=2,
    )
    for name in ("llama3", "qwen", "mistral"):
        add_model(provider, name, quality=0.95, price_in=Decimal(0), price_out=Decimal(0))
    return provider


def ep_name(provider: Provider) -> str:
    return f"ep{provider.endpoints.get().pk}"


def board() -> dict[str, Any]:
    return parse_board(sync_client().hgetall(BOARD_KEY))


def round_seen(**kw: Any) -> Any:
    """A round, and the gateway (a thread of this process) reading its board at once
    rather than within the second it would take."""
    report = health_round(force=True, **kw)
    shared_board._refreshed_at = float("-inf")
    return report


def later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


@pytest.fixture
def operator(db: Any) -> Any:
    return get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")


def test_a_round_probes_every_endpoint_with_its_key_and_publishes_the_board(gw: Env) -> None:
    add_model(gw.providers["fakeai"], "gpt-x")
    add_model(gw.providers["fakellama"], "llama")
    report = health_round(force=True)

    openai_ep = ep_name(gw.providers["fakeai"])
    assert report.statuses[openai_ep] == "healthy"
    assert report.statuses[ep_name(gw.providers["fakellama"])] == "healthy"
    # Providers without a routable model are not probed at all.
    assert ep_name(gw.providers["fakeclaude"]) not in report.statuses
    models_calls = [c for c in gw.fakes["openai"].calls if c.path.endswith("/models")]
    assert len(models_calls) == 1
    assert models_calls[0].headers["authorization"] == "Bearer sk-test-xxxxxxxx"
    check = HealthCheck.objects.get(target__name=openai_ep)
    assert check.ok and check.mode == "models" and check.cost_usd == 0
    entry = board()[openai_ep]
    assert (entry.status, entry.score, entry.ever_healthy) == ("healthy", 1.0, True)
    assert entry.provider == "fakeai"


def test_a_dead_endpoint_goes_down_after_three_rounds_with_flips(gw: Env) -> None:
    dead = ep_name(dead_local_provider())
    statuses = [health_round(force=True).statuses[dead] for _ in range(3)]
    assert statuses == ["degraded", "degraded", "down"]
    flips = list(HealthFlip.objects.filter(target__name=dead).order_by("id"))
    assert [(f.old_status, f.new_status) for f in flips] == [
        ("unknown", "degraded"),
        ("degraded", "down"),
    ]
    assert "3 failed probes in a row" in flips[1].reason
    row = EndpointHealth.objects.get(name=dead)
    assert not row.ever_healthy and row.score == 0.0
    assert "connect" in row.last_error.lower() or "refused" in row.last_error.lower()
    assert board()[dead].status == "down"


def test_a_double_fired_round_probes_nothing_twice(gw: Env) -> None:
    add_model(gw.providers["fakeai"], "gpt-x")
    now = timezone.now()
    first = health_round(now=now)
    second = health_round(now=now)
    assert first.probed == 1 and second.probed == 0
    # Once the interval has passed, it is due again.
    assert health_round(now=now + timedelta(seconds=31)).probed == 1


def test_recovery_takes_two_good_rounds_and_resolves_the_alert(gw: Env, operator: Any) -> None:
    add_model(gw.providers["fakeai"], "gpt-x")
    ep = ep_name(gw.providers["fakeai"])
    fake = gw.fakes["openai"]
    fake.set_default("fake-503")
    for _ in range(3):
        health_round(force=True)
    assert flips_process() == 2
    alert = Alert.objects.get(kind="endpoint_down")
    assert alert.severity == "critical" and alert.state == "open" and alert.tenant is None
    assert alerts_notify() == 1
    assert mail.outbox[-1].to == ["ops@example.com"]
    assert "[CRITICAL]" in mail.outbox[-1].subject
    # The way down (degraded after one failed probe) alerted nobody: only down does.
    assert Alert.objects.count() == 1

    fake.set_default(None)
    assert health_round(force=True).statuses[ep] == "down"  # 1 of 2 good probes
    assert health_round(force=True).statuses[ep] == "healthy"
    flips_process()
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.resolved_at is not None
    assert alerts_notify() >= 1
    assert mail.outbox[-1].subject.startswith("Resolved:")
    # Nothing more to say: a second notify sends nothing.
    sent = len(mail.outbox)
    alerts_notify()
    assert len(mail.outbox) == sent


def test_a_tenants_own_endpoint_alerts_its_admins_only(gw: Env, operator: Any) -> None:
    user = get_user_model().objects.create_user("alice", "alice@acme.test", "pw")
    Membership.objects.create(tenant=gw.tenant, user=user, role=Role.ADMIN)
    provider = gw.providers["fakeai"]
    add_model(provider, "gpt-x")
    own = ProviderEndpoint.objects.create(
        provider=provider,
        tenant=gw.tenant,
        name="mine",
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
    )
    credential_create(
        provider=provider, name="own", secret="sk-own-" + "y" * 10, endpoint=own, tenant=gw.tenant
    )
    from routing.models import RoutingPolicy

    RoutingPolicy.objects.update_or_create(
        tenant=gw.tenant, defaults={"allow_private_base_urls": True}
    )
    for _ in range(3):
        health_round(force=True)
    row = EndpointHealth.objects.get(name=f"ep{own.pk}")
    assert row.tenant == gw.tenant and row.status == "down"
    flips_process()
    alert = Alert.objects.get(kind="endpoint_down")
    assert alert.tenant == gw.tenant
    alerts_notify()
    assert [m.to for m in mail.outbox] == [["alice@acme.test"]]


def test_a_tenant_endpoint_on_a_private_address_is_not_probed_there(gw: Env) -> None:
    provider = gw.providers["fakeai"]
    add_model(provider, "gpt-x")
    own = ProviderEndpoint.objects.create(
        provider=provider, tenant=gw.tenant, name="sneaky", base_url=gw.fakes["openai"].base_url
    )
    credential_create(
        provider=provider, name="own", secret="sk-own-" + "z" * 10, endpoint=own, tenant=gw.tenant
    )
    before = len(gw.fakes["openai"].calls)
    report = health_round(force=True)
    assert report.statuses[f"ep{own.pk}"] == "degraded"
    # Only the platform endpoint's probe reached the fake (loopback is refused for tenants).
    assert len(gw.fakes["openai"].calls) == before + 1
    check = HealthCheck.objects.get(target__name=f"ep{own.pk}")
    assert not check.ok


def test_a_tenants_own_key_on_a_shared_endpoint_is_probed_as_its_own_target(gw: Env) -> None:
    provider = gw.providers["fakeai"]
    add_model(provider, "gpt-x")
    credential_create(
        provider=provider, name="byok", secret="sk-byok-" + "k" * 10, tenant=gw.tenant
    )
    report = health_round(force=True)
    ep = ep_name(provider)
    mine = f"{ep}:t{gw.tenant.pk}"
    assert report.statuses[ep] == report.statuses[mine] == "healthy"
    keys = sorted(
        c.headers["authorization"] for c in gw.fakes["openai"].calls if c.path.endswith("/models")
    )
    assert keys == ["Bearer sk-byok-kkkkkkkkkk", "Bearer sk-test-xxxxxxxx"]
    assert EndpointHealth.objects.get(name=mine).tenant == gw.tenant


def test_a_completion_probe_is_billed_to_whoever_paid(gw: Env) -> None:
    provider = gw.providers["fakeai"]
    add_model(provider, "gpt-big", price_in=Decimal(10), price_out=Decimal(30))
    add_model(provider, "gpt-small")  # 2 / 8 USD per Mtok: the cheapest, so the probe's
    ProviderEndpoint.objects.filter(provider=provider).update(health_check_mode="completion")
    health_round(force=True)
    call = gw.fakes["openai"].calls[-1]
    assert call.path.endswith("/chat/completions")
    assert call.json["model"] == "gpt-small" and call.json["max_tokens"] == 1
    check = HealthCheck.objects.get()
    assert check.mode == "completion" and check.ok
    # "ping" is 1 word: 11 prompt tokens; the answer is cut to 1 token.
    assert (check.prompt_tokens, check.completion_tokens) == (11, 1)
    assert check.cost_usd == Decimal("0.000030")
    # The platform's key paid: no tenant is charged.
    assert not UsageRecord.objects.exists()


def test_traffic_errors_seen_by_the_gateway_degrade_a_probing_endpoint(gw: Env) -> None:
    add_model(gw.providers["fakeai"], "gpt-x")
    ep = ep_name(gw.providers["fakeai"])
    # One request answered at once (its record keeps no attempts list: one attempt on its
    # endpoint), then probes pass (models list) while every completion fails: only
    # traffic can tell.
    gw.client().chat.completions.create(
        model="fakeai/gpt-x", messages=[{"role": "user", "content": "hi"}]
    )
    gw.usage(expected=1)
    gw.fakes["openai"].set_default("fake-500")
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            gw.client().chat.completions.create(
                model="fakeai/gpt-x", messages=[{"role": "user", "content": "hi"}]
            )
    gw.usage(expected=4)
    gw.fakes["openai"].set_default(None)
    report = health_round(force=True)
    assert report.statuses[ep] == "degraded"
    row = EndpointHealth.objects.get(name=ep)
    # Two attempts per failed request (1 retry) until the breaker opens on the 5th
    # failure, plus the one answered attempt its record does not list.
    assert row.passive["failures"] >= 5
    assert row.passive["attempts"] == row.passive["failures"] + 1
    assert row.score < 0.5


def test_the_command_runs_one_round_and_prints_each_endpoint(gw: Env, capsys: Any) -> None:
    add_model(gw.providers["fakeai"], "gpt-x")
    dead = ep_name(dead_local_provider())
    call_command("check_providers")
    out = capsys.readouterr().out
    assert f"{ep_name(gw.providers['fakeai'])}  healthy" in out
    assert f"{dead}  degraded" in out
    assert "2 endpoint(s), 2 probed, 1 failed" in out


# --- health steering the gateway ------------------------------------------------------


def _cost_first(gw: Env) -> Any:
    return gw.client().chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hello there"}],
        extra_headers={"x-aura-objective": "minimize_cost"},
    )


def test_models_on_one_dead_endpoint_fail_over_as_one_before_any_check(gw: Env) -> None:
    # The three dead models fill the whole default plan (primary + 2 fallbacks): the
    # healthy model takes the place of the steps skipped with their endpoint.
    add_model(gw.providers["fakeai"], "gpt-x")
    dead_local_provider()
    raw = _cost_first(gw)
    assert raw.headers["x-aura-provider"] == "fakeai"
    (record,) = gw.usage(expected=1)
    failed = [a for a in record.attempts if not a["ok"]]
    # One connection failure for the whole dead endpoint: no retries, no other models on it.
    assert len(failed) == 1 and failed[0]["error"] == "connection"
    assert failed[0]["endpoint"].startswith("ep")
    assert record.attempts[-1]["ok"] and record.attempts[-1]["provider"] == "fakeai"


def test_a_dead_endpoint_the_checks_saw_is_never_tried(gw: Env) -> None:
    add_model(gw.providers["fakeai"], "gpt-x")
    dead = ep_name(dead_local_provider())
    round_seen()
    round_seen()
    # Degraded and never seen healthy: the healthy provider comes first already.
    raw = _cost_first(gw)
    assert raw.headers["x-aura-provider"] == "fakeai"
    (record,) = gw.usage(expected=1)
    # One attempt, answered: the record names its endpoint and keeps no attempts list.
    assert record.attempts == [] and record.fallbacks == 0
    assert record.endpoint == ep_name(gw.providers["fakeai"])
    health_round(force=True)
    assert board()[dead].status == "down"


def test_the_route_api_explains_an_unhealthy_exclusion(gw: Env, operator: Any) -> None:
    from rest_framework.test import APIClient

    from tenants.services import api_key_create

    add_model(gw.providers["fakeai"], "gpt-x")
    dead_local_provider()
    for _ in range(3):
        health_round(force=True)
    _, manage = api_key_create(tenant=gw.tenant, name="admin", can_manage=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {manage}")
    body = client.post(
        "/api/v1/route",
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        format="json",
    ).json()
    assert body["model"] == "fakeai/gpt-x"
    reasons = {e["model"]: e["reason"] for e in body["excluded"]}
    assert reasons["deadllama/llama3"] == reasons["deadllama/qwen"] == "unhealthy"


# --- the scheduled task in a real Celery worker ------------------------------------------


def test_a_real_worker_runs_rounds_and_emails_the_down_alert(
    gw: Env, operator: Any, worker: Path, smtp: SmtpSink
) -> None:
    from monitoring.tasks import check_providers

    add_model(gw.providers["fakeai"], "gpt-x")
    gw.fakes["openai"].set_default("fake-503")
    ep = ep_name(gw.providers["fakeai"])
    for n in range(1, 4):
        # Each round claims what is due; make the endpoint due again, as 30 s would.
        EndpointHealth.objects.filter(name=ep).update(next_check_at=None)
        check_providers.delay()
        deadline = time.monotonic() + 30
        while HealthCheck.objects.filter(target__name=ep).count() < n:
            assert time.monotonic() < deadline, worker.read_text()[-3000:]
            time.sleep(0.05)
    # The third round flipped it down and enqueued flip processing, which alerts by email.
    wait_for(smtp, 1, worker)
    received = smtp.messages[0]
    assert received.rcpt_tos == ["ops@example.com"]
    assert received.message["subject"].startswith("[CRITICAL] fakeai main")
    assert EndpointHealth.objects.get(name=ep).status == "down"
    assert Alert.objects.get(kind="endpoint_down").notified_severity == "critical"
