# ZakPOS OCR. `make run` starts the edge node on its embedded defaults; `make test` runs every test.
# Both set up what they need first (idempotent): Debian packages, then .venv with the pinned dependencies.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-ben libzbar0 fonts-dejavu-core fonts-lohit-beng-bengali \
	mosquitto postgresql chromium
# The central tests log in over TCP as this superuser (trust auth, or the password `services` sets).
PG_TEST_URL := postgresql://postgres:postgres@127.0.0.1:5432/postgres

.PHONY: setup system venv services run test lint bench clean

setup: system venv

system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock --config-settings editable_mode=compat -e '.[edge,central,dev,export]'
	@touch $@

run: setup
	$(BIN)/edge-node serve

# Start PostgreSQL and Mosquitto when they are not running (a fresh CI machine); idempotent.
services: system
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -1) main start
	@for i in $$(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done; pg_isready -h 127.0.0.1 -p 5432
	@psql "$(PG_TEST_URL)" -qtAc 'SELECT 1' >/dev/null 2>&1 || \
	  su postgres -c "cd / && psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\""
	@psql "$(PG_TEST_URL)" -qtAc 'SELECT 1' >/dev/null
	@if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then \
	  install -d -o mosquitto -g mosquitto /run/mosquitto /var/lib/mosquitto /var/log/mosquitto; \
	  mosquitto -d -c /etc/mosquitto/mosquitto.conf; \
	fi

test: setup services
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench accuracy --set all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
