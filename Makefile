# ZakPOS OCR. `make run` starts the edge node on its embedded defaults; `make test` runs every test.
# Both set up what they need first (idempotent): Debian packages, then .venv with the pinned dependencies.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-ben libzbar0 fonts-dejavu-core fonts-lohit-beng-bengali

.PHONY: setup system venv run test lint bench clean

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
	$(BIN)/pip install -q -c requirements.lock --config-settings editable_mode=compat -e '.[edge,dev]'
	@touch $@

run: setup
	$(BIN)/edge-node serve

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench accuracy --set all

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
