# The few commands a developer runs. CI (.ci/run) calls the same ones.
CARGO_TARGET_DIR ?= $(HOME)/.cache/hayloft-target
export CARGO_TARGET_DIR
PG_SERVER ?= postgres://postgres@127.0.0.1:5432

.PHONY: run test test-postgres fmt lint schema schema-check bench db-reset ci

run:            ## the server on the embedded defaults (SQLite in ./hayloft.db)
	cargo run --release -- serve

test:           ## the whole test suite on SQLite
	cargo test --workspace

test-postgres:  ## the whole test suite on PostgreSQL (a fresh database per test)
	HAYLOFT_TEST_DATABASE=$(PG_SERVER) cargo test --workspace

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

schema:         ## regenerate src/db/schema.rs from the migrations (needs diesel_cli)
	@rm -f $(CARGO_TARGET_DIR)/schema.db
	diesel migration run --migration-dir migrations/sqlite --database-url $(CARGO_TARGET_DIR)/schema.db >/dev/null
	diesel print-schema --database-url $(CARGO_TARGET_DIR)/schema.db > src/db/schema.rs

schema-check:   ## fail if src/db/schema.rs and the migrations disagree
	@rm -f $(CARGO_TARGET_DIR)/schema-check.db
	@diesel migration run --migration-dir migrations/sqlite --database-url $(CARGO_TARGET_DIR)/schema-check.db >/dev/null
	@diesel print-schema --database-url $(CARGO_TARGET_DIR)/schema-check.db | diff -u src/db/schema.rs - \
		&& echo "schema.rs matches the migrations"

bench:          ## start-up and memory benchmarks (release build)
	cargo bench

db-reset:       ## delete the local SQLite database
	rm -f hayloft.db hayloft.db-wal hayloft.db-shm

ci:
	bash .ci/run
