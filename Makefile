# Two commands: `make reports` (demo reports) and `make test`. Both set up .venv when missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_CUSTOMERS ?= 20000
DEMO_SEED ?= 42
# One stamp per size and seed: `make reports DEMO_CUSTOMERS=1000000` regenerates the demo at that size.
DEMO := data/demo/.generated-$(DEMO_CUSTOMERS)-$(DEMO_SEED)

.PHONY: reports test test-slow test-engines lab demo-data contract-doc bench clean

$(BIN)/custlib: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

$(DEMO): | $(BIN)/custlib
	rm -f data/demo/.generated-*
	$(BIN)/custlib demo-data --out data/demo --customers $(DEMO_CUSTOMERS) --seed $(DEMO_SEED)
	touch $@

demo-data: $(DEMO)

reports: $(BIN)/custlib $(DEMO)
	$(BIN)/custlib run

# One worker per core; whole modules per worker (module-scoped fixtures are built once), handed
# out in collection order: the slowest modules first (tests/conftest.py).
test: $(BIN)/custlib
	$(BIN)/python -m pytest -q -n auto --dist loadscope --no-loadscope-reorder

test-slow: $(BIN)/custlib
	$(BIN)/python -m pytest -q -m slow

# Engine parity (tests/test_engines.py): DuckDB against Spark in local mode (PySpark from the
# "spark" extra, a Java 17 runtime: apt-get install openjdk-17-jre-headless), and against
# PostgreSQL as well when CUSTLIB_TEST_POSTGRES is set (.ci/run shows how to start a server).
# Some minutes: not part of `make test`.
$(VENV)/.spark: pyproject.toml | $(BIN)/custlib
	$(BIN)/python -m pip install -q -e ".[dev,spark]"
	touch $@

test-engines: $(BIN)/custlib $(VENV)/.spark
	@command -v java >/dev/null || [ -n "$$JAVA_HOME" ] || \
	  { echo "test-engines: Spark needs a Java 17 runtime (apt-get install openjdk-17-jre-headless)"; exit 1; }
	CUSTLIB_TEST_SPARK=1 $(BIN)/python -m pytest -q tests/test_engines.py

lab: $(BIN)/custlib $(DEMO)
	$(BIN)/jupyter lab --notebook-dir=notebooks

contract-doc: $(BIN)/custlib
	$(BIN)/custlib contract-doc --out docs/data_contract.md

bench: $(BIN)/custlib
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf reports/*/ reports/index.html reports/manifest.json
