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

demo: setup
	$(LAKE) ingest $(SAMPLE)/yellow_tripdata_sample_2019-01.csv $(SAMPLE)/yellow_tripdata_sample_2019-02.csv
	$(LAKE) tables

test: setup
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check lake pipelines flows cli tests bench

prefect-server: setup
	.venv/bin/prefect server start --host 127.0.0.1 --port 4200

mlflow-ui: setup
	.venv/bin/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///lakehouse/_mlflow/mlflow.db

clean:
	rm -rf lakehouse spark-warehouse
