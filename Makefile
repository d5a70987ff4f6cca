# secure-mlops — every command a user or CI needs. Nothing is installed by hand: `setup` creates the
# project venv with the local AWS emulator (moto) and the template linter.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CARGO ?= cargo
MOTO_SERVER := $(VENV)/bin/moto_server
# The tests and the demo find the emulator through this.
export SECURE_MLOPS_MOTO_SERVER := $(abspath $(MOTO_SERVER))

.PHONY: help setup build test demo lint release sizes clean

help:
	@echo "make demo   - set up, build and run the local story (emulator + Lambda harness)"
	@echo "make test   - set up, then fmt, clippy, unit + integration tests, template lint"
	@echo "make release- release binaries (target/release) and their sizes"
	@echo "make setup  - create $(VENV) with the AWS emulator (moto) and cfn-lint"

setup: $(MOTO_SERVER)

$(MOTO_SERVER): tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

build:
	$(CARGO) build --workspace --bins --locked

# One profile (dev) for the unit tests and for the binaries the harness runs: dependencies compile once.
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) build --workspace --bins --locked
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --locked --no-fail-fast; \
	fi
	$(MAKE) lint

lint: setup
	$(VENV)/bin/cfn-lint infra/template.yaml infra/examples/*.yaml infra/stacksets/*.yaml

demo: setup build
	$(CARGO) run --quiet --locked -p secure-mlops-tests --bin demo -- target/demo/report.json

release:
	$(CARGO) build --workspace --bins --release --locked
	@for f in org-accounts studio-domain studio-user-profile cross-account-access model-approval stackset-deploy detective-control; do ls -l target/release/$$f | awk -v f=$$f '{printf "%s: %.1f MiB (stripped)\n", f, $$5/1048576}'; done

clean:
	$(CARGO) clean
	rm -rf $(VENV)
