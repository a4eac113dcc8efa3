"""Delta versions that registered MLflow model versions were trained on: `lake vacuum` keeps them readable.

Training tags each run with input.<table>.version and input.<table>.path (pipelines/train/tracking.py); a registered
model version points at its run. Runs whose input path is another lake's table do not pin this lake's tables.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from lake import Lake
from lake.config import is_uri
from lake.errors import SetupError

TAG_PREFIX, TAG_SUFFIX = "input.", ".version"


def _tracking_uri(lake: Lake) -> str | None:
    """The lake's MLflow store, None when it uses the default local store and that was never created."""
    from pipelines.train.tracking import MLFLOW_DIR, tracking_uri

    if not lake.conf.get("mlflow.tracking_uri") and not is_uri(lake.root):
        if not (Path(lake.root) / MLFLOW_DIR / "mlflow.db").exists():
            return None
    return tracking_uri(lake)


def pinned_versions(lake: Lake) -> dict[str, dict[int, list[str]]]:
    """table -> Delta version -> the registered model versions ("name vN") trained on it."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = _tracking_uri(lake)
    if uri is None:
        return {}
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    pins: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    try:
        token = None
        while True:
            page = client.search_model_versions(page_token=token)
            for model_version in page:
                if not model_version.run_id:
                    continue
                try:
                    tags = client.get_run(model_version.run_id).data.tags
                except MlflowException:
                    continue  # the run was deleted: nothing to read it by
                for key, value in tags.items():
                    if not (key.startswith(TAG_PREFIX) and key.endswith(TAG_SUFFIX)):
                        continue
                    table = key[len(TAG_PREFIX) : -len(TAG_SUFFIX)]
                    path = tags.get(f"{TAG_PREFIX}{table}.path")
                    if table not in lake.specs or (path and path.rstrip("/") != lake.path(table).rstrip("/")):
                        continue
                    pins[table][int(value)].append(f"{model_version.name} v{model_version.version}")
            token = page.token
            if not token:
                break
    except (MlflowException, OSError) as exc:
        raise SetupError(
            f"cannot read the registered model versions from MLflow at {uri} ({str(exc).splitlines()[0]}); "
            "they say which table versions must stay readable. Start the tracking server, or pass --force"
        ) from exc
    return {table: dict(versions) for table, versions in pins.items()}
