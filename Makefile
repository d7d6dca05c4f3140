# The two commands of the README: `make run` (a demo station on mock pins) and `make test`
# (everything; what CI runs). Both set everything up first on a fresh Debian / Raspberry Pi
# OS machine. While working: `make test-fast` (the unit layer, in seconds) and `make lint`.

PYTHON ?= python3
VENV ?= .venv
DATA ?= demo-data
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := sensors edge web sync district posko
# The unit layer: no child stations, no broker, no browser, no database server. The tests
# wait on threads as much as they compute, so more workers than cores.
FAST := not slow and not broker and not browser and not postgres
FAST_WORKERS ?= 3

.PHONY: run test test-fast setup system-deps apt lint bench clean

run: $(STAMP)
	@$(BIN)/posko --data $(DATA) run --mock --demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n $(FAST_WORKERS) -m "$(FAST)"

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
	command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || missing="$$missing e2fsprogs"; \
	command -v losetup >/dev/null || [ -x /usr/sbin/losetup ] || missing="$$missing mount"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then $(MAKE) --no-print-directory apt PKGS="$$missing"; fi

apt:
	@echo "installing Debian packages:$(PKGS)"
	@if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "please install as root: apt-get install$(PKGS)"; exit 1; fi; \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(PKGS)

# Every check runs, then lint fails if any of them did.
lint: $(STAMP)
	@failed=""; \
	for check in "ruff check $(PACKAGES) tests bench" "ruff format --check $(PACKAGES) tests bench" \
		"mypy $(PACKAGES)" "mypy --strict sync district"; do \
		echo "$(BIN)/$$check"; $(BIN)/$$check || failed="$$failed\n  $$check"; \
	done; \
	if [ -n "$$failed" ]; then printf "lint failed:$$failed\n"; exit 1; fi

bench: $(STAMP)
	$(BIN)/python bench/store.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/sync.py
	$(BIN)/python bench/hostile.py

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
