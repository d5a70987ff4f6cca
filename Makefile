# secure-mlops - every command a user or CI needs. Nothing is installed by hand: `setup` creates the
# project venv with the local AWS emulator (moto) and cfn-lint; `tools` adds the other template gates
# (AWS SAM CLI + cargo-lambda, checkov, cfn-guard) under $(TOOLS_DIR), pinned, one directory per version.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
CARGO ?= cargo
MOTO_SERVER := $(VENV)/bin/moto_server
# The tests and the demo find the emulator through this.
export SECURE_MLOPS_MOTO_SERVER := $(abspath $(MOTO_SERVER))

# Template gates. Each tool lives in a directory named after its pinned requirements, so a cached
# $(TOOLS_DIR) (CI keeps one in ~/.cache) is reused exactly when nothing changed.
TOOLS_DIR ?= .tools
override TOOLS_DIR := $(abspath $(TOOLS_DIR))
CFN_GUARD_VERSION := 3.2.1
hash = $(shell sha256sum $(1) | cut -c1-12)
SAM_VENV := $(TOOLS_DIR)/sam-$(call hash,infra/requirements-sam.txt)
CHECKOV_VENV := $(TOOLS_DIR)/checkov-$(call hash,infra/requirements-checkov.txt)
CFN_GUARD := $(TOOLS_DIR)/cfn-guard-$(CFN_GUARD_VERSION)/bin/cfn-guard
SAM := $(SAM_VENV)/bin/sam
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# sam works offline for validate/build, but wants a region and credentials to exist, and no telemetry.
SAM_ENV := PATH="$(SAM_VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline
TEMPLATES := infra/template.yaml $(wildcard infra/examples/*.yaml) $(wildcard infra/stacksets/*.yaml)
SAM_BUILD_DIR ?= .aws-sam/build

.PHONY: help setup tools build test demo try bench lint sam-build lambda-arm64 release sizes clean

help:
	@echo "make demo      - set up, build and run the local story (emulator + Lambda harness)"
	@echo "make test      - set up, then fmt, clippy, unit + integration tests, template gates (make lint)"
	@echo "make lint      - template gates: cfn-lint, sam validate --lint, checkov, cfn-guard rules + rule tests"
	@echo "make sam-build - sam build (cargo-lambda, arm64): one bootstrap per function in $(SAM_BUILD_DIR)"
	@echo "make bench     - release binaries vs the Python references: target/bench/report.md + ratios.png"
	@echo "make release   - release binaries (target/release) and their sizes"
	@echo "make setup     - create $(VENV) with the AWS emulator (moto) and cfn-lint"
	@echo "make tools     - install the template gates into $(TOOLS_DIR)"

setup: $(MOTO_SERVER)

$(MOTO_SERVER): tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

tools: $(SAM) $(CHECKOV) $(CFN_GUARD)

$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-sam.txt

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt

$(CFN_GUARD):
	$(CARGO) install cfn-guard --version $(CFN_GUARD_VERSION) --locked --quiet --root $(TOOLS_DIR)/cfn-guard-$(CFN_GUARD_VERSION)

build:
	$(CARGO) build --workspace --bins --locked

# One profile (dev) for the unit tests and for the binaries the harness runs: dependencies compile once.
test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) build --workspace --bins --locked
	rm -rf "$${CARGO_TARGET_DIR:-target}/debug/iam-calls"
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --locked --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --locked --no-fail-fast; \
	fi
	# Every role against what its function called during the suite (tests/src/bin/iam-check.rs).
	"$${CARGO_TARGET_DIR:-target}/debug/iam-check"
	$(MAKE) lint

# Every gate runs on every template (the SAM application, the consumer examples, the stack-set
# template) and prints its version and time; any error, warning or failed check fails the target.
lint: setup tools
	@t=$$(date +%s%N); $(VENV)/bin/cfn-lint --version; \
	  $(VENV)/bin/cfn-lint $(TEMPLATES) && \
	  printf 'gate cfn-lint: ok (%d ms)\n' $$(( ($$(date +%s%N) - t) / 1000000 ))
	@t=$$(date +%s%N); $(SAM_ENV) $(SAM) --version; \
	  $(SAM_ENV) $(SAM) validate --lint --template-file infra/template.yaml && \
	  printf 'gate sam validate --lint: ok (%d ms)\n' $$(( ($$(date +%s%N) - t) / 1000000 ))
	@t=$$(date +%s%N); echo "checkov $$($(CHECKOV) --version)"; \
	  $(CHECKOV) --skip-download --quiet --compact --framework cloudformation $(addprefix -f ,$(TEMPLATES)) && \
	  printf 'gate checkov: ok (%d ms)\n' $$(( ($$(date +%s%N) - t) / 1000000 ))
	@t=$$(date +%s%N); $(CFN_GUARD) --version; \
	  $(CFN_GUARD) test --rules-file infra/rules/secure-mlops.guard --test-data infra/rules/tests/secure-mlops_tests.yaml >/dev/null && \
	  for f in $(TEMPLATES); do $(CFN_GUARD) validate --rules infra/rules/secure-mlops.guard --data $$f --show-summary fail || exit 1; done && \
	  infra/rules/broken-template.sh $(CFN_GUARD) && \
	  printf 'gate cfn-guard (rule tests, %d templates, broken copies): ok (%d ms)\n' $(words $(TEMPLATES)) $$(( ($$(date +%s%N) - t) / 1000000 ))

# The deployable artifacts: cargo-lambda cross-compiles each function for arm64 (zig as the linker)
# with the workspace's release profile (it keeps our panic="unwind", LTO and strip settings).
sam-build: tools
	infra/sam-build.sh "$(SAM_VENV)" "$(SAM_BUILD_DIR)"

# What `sam build` runs (template: `BuildMethod: makefile`, samconfig.toml: `build_in_source`): SAM calls
# `make build-<LogicalId>` once per function with ARTIFACTS_DIR set. The first call compiles every
# function in one cargo-lambda pass (arm64, zig as the linker); cargo finds the others' work done, so
# each later call only copies its bootstrap. `--disable-optimizations` keeps cargo-lambda from adding
# its own release settings (panic = "abort" among them): the workspace's release profile is what ships.
LAMBDA_DIR := $${CARGO_TARGET_DIR:-$(CURDIR)/target}/lambda-arm64
lambda-arm64:
	@# Without build_in_source SAM copies the repository (venvs and all) to a scratch directory and runs
	@# this Makefile there: refuse rather than compile from nothing into a directory that is thrown away.
	@test "$(realpath $(dir $(firstword $(MAKEFILE_LIST))))" = "$(CURDIR)" || { echo "sam build: use --build-in-source (samconfig.toml sets build_in_source = true)" >&2; exit 1; }
	$(CARGO) lambda build --release --arm64 --locked --disable-optimizations --lambda-dir "$(LAMBDA_DIR)"

# OrgAccountsFunction -> org-accounts: the logical id names the crate and its binary (a template test
# holds every function to it).
build-%Function: lambda-arm64
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	cp "$(LAMBDA_DIR)/$(shell echo '$*' | sed -E 's/([a-z0-9])([A-Z])/\1-\2/g' | tr A-Z a-z)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"

demo: setup build
	$(CARGO) run --quiet --locked -p secure-mlops-tests --bin demo -- target/demo/report.json

# One sample event through one function, locally (README "Try one function"):
#   make try FUNCTION=org-accounts EVENT=events/org-accounts/create.json
FUNCTION ?= org-accounts
EVENT ?= events/$(FUNCTION)/create.json
try: setup build
	"$${CARGO_TARGET_DIR:-target}/debug/try-event" $(FUNCTION) $(EVENT)

# The numbers: release binaries (and the Python references in tests/bench/) under the same harness.
# Writes target/bench/report.md, report.json and ratios.png. Takes ~7 min after the release build.
bench: setup
	$(CARGO) build --workspace --bins --release --locked
	# The binary just built (`cargo run -p` would resolve features for one package and rebuild).
	"$${CARGO_TARGET_DIR:-target}/release/bench" $(abspath target/bench)

release:
	$(CARGO) build --workspace --bins --release --locked
	@for f in org-accounts studio-domain studio-user-profile cross-account-access model-approval stackset-deploy detective-control; do ls -l target/release/$$f | awk -v f=$$f '{printf "%s: %.1f MiB (stripped)\n", f, $$5/1048576}'; done

clean:
	$(CARGO) clean
	rm -rf $(VENV) .aws-sam
