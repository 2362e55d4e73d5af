#!/usr/bin/env bash
# Measure AURA's gateway with the shared harness (../shared/bench), exactly as LiteLLM was
# measured: fake upstreams + wrk on CPU 0, AURA (uvicorn, 1 worker) on CPU 1.
#
#   bench/run_aura.sh [LABEL] [extra uvicorn args]      e.g. REPS=1 bench/run_aura.sh
#   BUDGETS=on bench/run_aura.sh aura-budgets   # every request reserves on 2 budgets
#   CACHE=exact bench/run_aura.sh aura-cache    # repeated requests: every one after the first a hit
#
# AURA's own Postgres and Redis (embedded, in var/bench) are started first, outside the
# measured process tree, unpinned; auth, routing and usage records are all on.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
LABEL=${1:-aura-1w}
shift || true
PY=$ROOT/.venv/bin/python
export AURA_DATA_DIR=$ROOT/var/bench
KEY=aura-benchbench01.$(printf 'b%.0s' {1..32})

cd "$ROOT"
mkdir -p var
"$PY" -m aura.embedded start > var/bench.env
set -a; . var/bench.env; set +a
export AURA_EMBEDDED_DB=1 LOG_LEVEL=WARNING
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py bench_setup --key "$KEY" --port "${UP_PORT:-9100}" --budgets "${BUDGETS:-off}" \
  --cache "${CACHE:-off}"

GW_API_KEY=$KEY GW_MODEL=fake-gpt GW_MODEL_500=fake-gpt-500 GW_MODEL_429=fake-gpt-429 \
GW_VERSION="aura $(git -C "$ROOT" rev-parse --short HEAD)" \
  "$SHARED/run_gateway.sh" "$LABEL" http://127.0.0.1:8000/v1 http://127.0.0.1:8000/healthz -- \
  "$PY" -m uvicorn aura.asgi:application --host 127.0.0.1 --port 8000 --workers "${WORKERS:-1}" \
  --loop uvloop --http httptools --no-access-log --log-level warning --lifespan on "$@"
