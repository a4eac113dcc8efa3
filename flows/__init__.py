"""Prefect flows `ingest`, `silver`, `gold`, `train`, `score` and `daily`: thin wrappers over run_<stage>()."""
