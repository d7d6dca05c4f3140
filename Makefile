# The two commands of the README: `make run` (a demo station on mock pins) and `make test`.
# Both set everything up first on a fresh Debian / Raspberry Pi OS machine.

PYTHON ?= python3
VENV ?= .venv
DATA ?= demo-data
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the test suite needs (a real broker and a real browser).
TEST_APT := mosquitto chromium

.PHONY: run test setup system-deps lint bench clean

run: $(STAMP)
	$(BIN)/posko --data $(DATA) run --mock --demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || $(MAKE) --no-print-directory apt PKGS=python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt PKGS="$$missing"; fi

apt:
	@echo "installing Debian packages:$(PKGS)"
	@if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "please install as root: apt-get install$(PKGS)"; exit 1; fi; \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(PKGS)

lint: $(STAMP)
	$(BIN)/ruff check edge sensors web sync tests bench
	$(BIN)/mypy edge sensors web sync

bench: $(STAMP)
	$(BIN)/python bench/store.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/sync.py

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
