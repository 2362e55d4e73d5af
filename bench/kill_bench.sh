#!/usr/bin/env bash
# Records versus upstream calls when the gateway is killed under load (issue 7, item 2).
#
#   bench/kill_bench.sh            # c=64 for 6 s, kill -9 after 3 s, restart, count
#
# The shared harness's fake upstream (with a small delay, so requests are in flight) and
# wrk drive AURA (uvicorn, 1 worker) on its own embedded Postgres and Redis in var/bench.
# After the kill a second gateway process starts on the same data folder, as a supervisor
# would, and recovers the first one's journal. Prints: upstream calls, usage records
# written for them (ok / interrupted), and how many are missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
PY=$ROOT/.venv/bin/python
UP_PORT=${UP_PORT:-9150}
GW_PORT=${GW_PORT:-8050}
CONC=${CONC:-64}
DELAY_MS=${DELAY_MS:-20}
export AURA_DATA_DIR=$ROOT/var/bench
KEY=aura-benchbench01.$(printf 'b%.0s' {1..32})

cd "$ROOT"
mkdir -p var
"$PY" -m aura.embedded start > var/bench.env
set -a; . var/bench.env; set +a
export AURA_EMBEDDED_DB=1 LOG_LEVEL=WARNING
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py bench_setup --key "$KEY" --port "$UP_PORT" --budgets off

count_records() {
  "$PY" manage.py shell --no-imports -c "
from billing.models import UsageRecord
from django.db.models import Count
rows = dict(UsageRecord.objects.filter(tenant__slug='bench').values_list('status').annotate(n=Count('id')))
print(sum(rows.values()), rows.get('ok', 0), rows.get('interrupted', 0))" 2>/dev/null
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

python3 "$SHARED/fake_upstream.py" --port "$UP_PORT" --delay-ms "$DELAY_MS" >/dev/null 2>&1 &
pids+=($!)
start_gateway() {
  "$PY" -m uvicorn aura.asgi:application --host 127.0.0.1 --port "$GW_PORT" --workers 1 \
    --loop uvloop --http httptools --no-access-log --log-level warning --lifespan on &
  GW=$!
  pids+=("$GW")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && return 0
    sleep 0.1
  done
  echo "gateway did not start" >&2; exit 1
}
read -r before _ _ < <(count_records)
up_before=$(curl -s "http://127.0.0.1:$UP_PORT/_stats" | "$PY" -c 'import json,sys;print(json.load(sys.stdin)["chat"])')
start_gateway
BENCH_API_KEY=$KEY BENCH_MODEL=fake-gpt wrk -t1 -c"$CONC" -d6s -s "$SHARED/wrk_post.lua" \
  "http://127.0.0.1:$GW_PORT/v1/chat/completions" > var/kill-wrk.txt 2>&1 &
WRK=$!
sleep 3
kill -9 "$GW"
wait "$WRK" || true
up_after=$(curl -s "http://127.0.0.1:$UP_PORT/_stats" | "$PY" -c 'import json,sys;print(json.load(sys.stdin)["chat"])')
start_gateway   # recovers the killed process's journal at start
sleep 3
kill -TERM "$GW"; wait "$GW" 2>/dev/null || true
read -r after ok interrupted < <(count_records)
echo "upstream chat counter: $up_before -> $up_after" >&2
calls=$((up_after - up_before))
records=$((after - before))
echo "upstream calls during the run: $calls (about $((calls / 3)) req/s before the kill)"
echo "usage records written: $records (ok and interrupted in total: ok $ok, interrupted $interrupted)"
echo "missing: $(( calls > records ? calls - records : 0 ))"
