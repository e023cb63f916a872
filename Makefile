SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0

.DEFAULT_GOAL := help
.PHONY: help setup build lint test demo bench chaos fuzz build-lambda deploy clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

setup: ## Install the tools the tests need (.venv: moto, cfn-lint, SAM CLI, cargo-lambda; .venv/checkov; cargo-nextest, cargo-deny)
	scripts/setup.sh

build: ## Build every crate and test
	cargo build --workspace --all-targets

lint: setup ## rustfmt, clippy -D warnings, cargo deny (bans, licenses, sources; after cargo fetch, which brings every platform's crates that cargo metadata reads), cfn-lint, sam validate --lint, each function reads only its secrets, checkov (offline), asl-validator on the state machine definitions
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo fetch --locked
	cargo deny --offline check bans licenses sources
	cfn-lint infra/template.yaml
	sam validate --lint -t infra/template.yaml
	python3 scripts/check_template_secrets.py infra/template.yaml
	BC_SKIP_MAPPING=TRUE .venv/checkov/bin/checkov --quiet --compact --skip-download --framework cloudformation -f infra/template.yaml
	for definition in infra/statemachine/*.asl.json; do tools/asl/node_modules/.bin/asl-validator --json-path "$$definition" || exit 1; done

test: setup lint ## Everything: lint, the bench's moto checked against moto, then all tests (moto on a free loopback port, a Samba AD DC on 127.0.0.1:389/636)
	"$${OFFRAMP_VENV:-.venv}/bin/python" scripts/check_moto_bench_server.py
	scripts/with-moto.sh scripts/with-samba.sh cargo nextest run --workspace --no-fail-fast

demo: ## Sandbox + dry run + real run + re-run + audit record (PSA=connectwise|autotask|halo)
	scripts/demo.sh

bench: setup ## Throughput against each vendor's limit (two sizes), rollback beside it, 100 user offboardings with and without \$$batch, 200 AD users on the Samba DC, the webhook storm, 100,000 configurations through the state machine across 30 s invocations (continuation), the headline (a 100-seat client through the chain), peak memory, audit write requests per item (release build)
	cargo build --release -p offramp-cli -p offramp-sandbox -p offramp-tests $(addprefix -p ,$(FUNCTIONS)) --bins
	"$${OFFRAMP_VENV:-.venv}/bin/python" scripts/check_moto_bench_server.py
	OFFRAMP_MOTO_BENCH=1 scripts/with-moto.sh scripts/with-samba.sh target/release/offramp-bench

fuzz: ## Fuzz every Lambda event shape, workflow input and vendor answer parser (cargo-fuzz, nightly; FUZZ_RUNS per target, default 700000: 10.5 million in all); not part of make test
	scripts/fuzz.sh

# CHAOS_ITEMS configurations, CHAOS_KILLS SIGKILLs at seeded points (CHAOS_SEED).
CHAOS_ITEMS ?= 2000
CHAOS_KILLS ?= 20
CHAOS_SEED ?= 13

chaos: ## The CLI killed with SIGKILL at 20 seeded points of a 2,000-item run, resumed each time; lost/twice/trail checked in the sandbox (release build)
	cargo build --release -p offramp-cli -p offramp-sandbox -p offramp-tests --bins
	target/release/offramp-bench crashes $(CHAOS_ITEMS) $(CHAOS_KILLS) $(CHAOS_SEED)

FUNCTIONS := deactivate-configs deactivate-contacts rollback delete-itglue-org offboard-user webhook orchestrator api approval

# Each zip must stay under LAMBDA_ZIP_LIMIT bytes (README "Supply chain"): the functions are
# built without SQLite and with one TLS stack; a dependency that brings either back fails here.
LAMBDA_ZIP_LIMIT := 4000000

build-lambda: setup ## Lambda zips for arm64 (target/lambda/<function>/bootstrap.zip, every function), with their sizes
	rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --output-format zip $(addprefix -p ,$(FUNCTIONS))
	python3 scripts/lambda_sizes.py $(LAMBDA_ZIP_LIMIT) $(FUNCTIONS)

deploy: setup ## sam build + sam deploy --guided (needs AWS credentials)
	sam build -t infra/template.yaml
	sam deploy --guided

clean: ## Remove build output and local state
	cargo clean
	rm -rf .aws-sam .offramp
