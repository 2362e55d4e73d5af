"""The gateway's batched usage writer: records reach Postgres, outages lose nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from billing.usage import SPOOL_FILE, UsageWriter

pytestmark = pytest.mark.django_db(transaction=True)


def record(tenant_id: int, request_id: str) -> dict:
    return {
        "tenant_id": tenant_id,
        "created_at": datetime.now(UTC),
        "request_id": request_id,
        "api_key_id": None,
        "kind": "chat",
        "provider": "openai",
        "model": "gpt-x",
        "status": "ok",
        "http_status": 200,
        "error_code": "",
        "stream": False,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 0,
        "cost_usd": Decimal("0.000123"),
        "cost_estimated": False,
        "latency_ms": 12.5,
        "cache_status": "miss",
        "fallbacks": 0,
        "attempts": [],
    }


def test_records_spilled_during_an_outage_are_loaded_once_the_database_is_back(
    acme, tmp_path, monkeypatch
):
    monkeypatch.setattr("aura.embedded.data_dir", lambda: tmp_path)
    spilled = [record(acme.pk, "req_spilled_1"), record(acme.pk, "req_spilled_2")]
    UsageWriter._spill_records(spilled)
    line = json.loads((tmp_path / SPOOL_FILE).read_text().splitlines()[0])
    assert line["cost_usd"] == "0.000123"

    async def run() -> None:
        writer = UsageWriter()
        writer.submit(record(acme.pk, "req_live"))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if writer.written >= 3:
                break
        await writer.close()

    asyncio.run(run())
    ids = sorted(UsageRecord.objects.values_list("request_id", flat=True))
    assert ids == ["req_live", "req_spilled_1", "req_spilled_2"]
    assert not (tmp_path / SPOOL_FILE).exists()
    assert {r.cost_usd for r in UsageRecord.objects.all()} == {Decimal("0.000123")}


def test_a_torn_spool_line_is_set_aside_and_the_rest_still_loads(acme, tmp_path, monkeypatch):
    monkeypatch.setattr("aura.embedded.data_dir", lambda: tmp_path)
    UsageWriter._spill_records([record(acme.pk, "req_ok_1")])
    with open(tmp_path / SPOOL_FILE, "a") as fh:
        fh.write('{"tenant_id": 1, "created_at": "20')  # a crash mid-write
        fh.write("\n")

    async def run() -> None:
        writer = UsageWriter()
        writer.submit(record(acme.pk, "req_live"))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if writer.written >= 2:
                break
        await writer.close()

    asyncio.run(run())
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == [
        "req_live",
        "req_ok_1",
    ]
    assert "created_at" in (tmp_path / "usage-rejected.jsonl").read_text()
    assert not (tmp_path / SPOOL_FILE).exists()
