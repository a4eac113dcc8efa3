# Two commands on a fresh machine: `make demo` (set-up + the whole pipeline on the bundled sample) and `make test`.
PY := .venv/bin/python
LAKE := .venv/bin/lake
SAMPLE := data/sample

.PHONY: setup demo test lint clean prefect-server mlflow-ui serve bench

.venv/.installed: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

setup: .venv/.installed
	$(PY) -m lake.jars >/dev/null
	$(PY) -m lake.classarchive >/dev/null

# The main job on the embedded defaults: the Prefect `daily` flow (ephemeral API, no server needed) ingests the
# bundled sample, then silver, gold, train (MLflow, SQLite) and score; then a look at what it made.
demo: setup
	$(LAKE) run daily --landing $(SAMPLE)
	$(LAKE) tables
	$(LAKE) query "SELECT pickup_borough, SUM(trips) AS trips FROM gold.hourly_demand GROUP BY pickup_borough ORDER BY trips DESC"

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=30

lint: setup
	.venv/bin/ruff check lake pipelines flows cli tests bench

prefect-server: setup
	PREFECT_SERVER_ANALYTICS_ENABLED=false .venv/bin/prefect server start --host 127.0.0.1 --port 4200

# Without MLflow's job execution: it starts a job runner and six Huey consumer processes for GenAI jobs this project
# never submits, which poll beside Spark on a 2-core laptop (~30 s of CPU in 2.5 minutes, BENCHMARKS.md).
mlflow-ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false .venv/bin/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///lakehouse/_mlflow/mlflow.db

serve: setup
	PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(LAKE) serve

# The scale benchmark (generated data, per-stage rows/s and memory, Spark / DuckDB, 30 vs 365-day daily run) first;
# BENCH_ROWS=1000000,5000000 measures both sizes in one run.
BENCH_ROWS ?= 5000000
bench: setup
	$(PY) bench/bench_scale.py --rows $(BENCH_ROWS) --train --daily
	$(PY) bench/bench_change_feed.py
	$(PY) bench/bench_jit.py
	$(PY) bench/bench_startup.py
	$(PY) bench/bench_cluster.py
	$(PY) bench/bench_silver.py
	$(PY) bench/bench_query.py
	$(PY) bench/bench_train.py
	$(PY) bench/assemble.py

clean:
	rm -rf lakehouse spark-warehouse
