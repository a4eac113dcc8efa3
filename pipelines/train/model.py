"""The model: its parameters (conf/model.yaml), the time-based split and the Spark ML pipelines that are fitted."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml
from pyspark.ml import Pipeline
from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler
from pyspark.ml.regression import GBTRegressor, LinearRegression, RandomForestRegressor
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lake import Lake
from lake.errors import ConfigError, MissingInputError
from pipelines.common import StageError

FEATURES_TABLE = "gold.trip_features"
PREDICTION_COL = "prediction"
FEATURES_COL = "features"
# Added by the pipeline's first stage: 1.0 when the zone pair had trips in gold's trailing window.
HISTORY_FLAG = "pair_has_history"
UNKNOWN = "unknown"  # the category of a null categorical value
REGRESSORS = {"gbt": GBTRegressor, "random_forest": RandomForestRegressor}
# Rows are hash-partitioned and sorted by this key before fitting, so a re-run sees the same rows in the same order.
ORDER_KEY = "trip_key"
DEFAULT_FIT_PARTITIONS = 4


@dataclass(frozen=True)
class Split:
    """The time-based split: train on pickup_date < test_from, test on test_from <= pickup_date."""

    test_from: dt.date
    train_min: dt.date
    test_max: dt.date


def load_params(lake: Lake) -> dict[str, Any]:
    """The model parameters from the file named by conf `model.params` (relative to conf/)."""
    path = lake.conf.conf_file("model.params")
    if not path.exists():
        raise MissingInputError(f"model parameters {path} not found (conf key model.params)")
    params = yaml.safe_load(path.read_text()) or {}
    regressor = params.get("regressor", {}).get("type")
    if regressor not in REGRESSORS:
        raise ConfigError(f"{path}: regressor.type must be one of {sorted(REGRESSORS)}, not {regressor!r}")
    return params


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def feature_columns(params: dict[str, Any]) -> list[str]:
    """The raw gold.trip_features columns the model reads (its signature's inputs)."""
    return list(params["features"]["categorical"]) + list(params["features"]["numeric"])


def choose_split(features: DataFrame, params: dict[str, Any]) -> Split:
    """Resolves split.test_from (or split.test_days before the last day) against the dates present."""
    bounds = features.agg(F.min("pickup_date").alias("first"), F.max("pickup_date").alias("last")).first()
    if bounds["first"] is None:
        raise StageError(f"{FEATURES_TABLE} has no rows: nothing to train on (run `lake gold` first)")
    split = params["split"]
    if split.get("test_days"):
        test_from = bounds["last"] - dt.timedelta(days=int(split["test_days"]) - 1)
    elif split.get("test_from"):
        test_from = dt.date.fromisoformat(str(split["test_from"]))
    else:
        raise ConfigError("model parameters: set split.test_from or split.test_days")
    return Split(test_from, bounds["first"], bounds["last"])


def split_frames(features: DataFrame, split: Split, params: dict[str, Any]) -> tuple[DataFrame, DataFrame]:
    """Train (earlier days) and test (later days) frames of labelled rows, in a stable partitioning and order."""
    label = params["label"]
    labelled = features.where(F.col(label).isNotNull()).select(
        ORDER_KEY, "pickup_date", label, *feature_columns(params)
    )
    in_test_window = F.col("pickup_date") >= F.lit(split.test_from)
    return stable(labelled.where(~in_test_window), params), stable(labelled.where(in_test_window), params)


def stable(frame: DataFrame, params: dict[str, Any]) -> DataFrame:
    """The same rows in the same partitions in the same order, whatever order the table's files were listed in:
    the trees sample rows per partition to find split candidates, so partitioning must depend on the data only
    (a range sort's boundaries depend on the input order; a hash repartition's do not)."""
    partitions = int(params.get("fit_partitions", DEFAULT_FIT_PARTITIONS))
    return frame.repartition(partitions, ORDER_KEY).sortWithinPartitions(ORDER_KEY)


def check_window_sizes(split: Split, params: dict[str, Any], train_rows: int, test_rows: int) -> None:
    """Too few rows on either side of the split is an error that names the window and the setting."""
    for name, rows, minimum, window in (
        ("train", train_rows, "min_train_rows", f"pickup_date < {split.test_from}"),
        ("test", test_rows, "min_test_rows", f"pickup_date >= {split.test_from}"),
    ):
        needed = int(params["split"][minimum])
        if rows < needed:
            raise StageError(
                f"{name} window ({window}; table dates {split.train_min}..{split.test_max}) has {rows} labelled "
                f"row(s) of {FEATURES_TABLE}; at least {needed} needed (split.{minimum} in the model parameters)"
            )


def _prepare(params: dict[str, Any]) -> SQLTransformer:
    """Casts categoricals to text ('unknown' for null) and numerics to double, and adds the history flag."""
    features = params["features"]
    categorical = [f"COALESCE(CAST(`{c}` AS STRING), '{UNKNOWN}') AS `{c}_cat`" for c in features["categorical"]]
    numeric = [f"CAST(`{c}` AS DOUBLE) AS `{c}_num`" for c in features["numeric"]]
    flag = f"CAST(pair_median_duration IS NOT NULL AS DOUBLE) AS {HISTORY_FLAG}"
    return SQLTransformer(statement=f"SELECT *, {', '.join(categorical + numeric + [flag])} FROM __THIS__")


def _encoding_stages(params: dict[str, Any], one_hot: bool) -> tuple[list, list[str]]:
    """Indexing (and one-hot encoding for linear models) plus mean imputation; returns stages and vector inputs."""
    categorical = params["features"]["categorical"]
    numeric = params["features"]["numeric"]
    indexed = [f"{c}_idx" for c in categorical]
    imputed = [f"{c}_imp" for c in numeric]
    stages: list = [
        _prepare(params),
        StringIndexer(
            inputCols=[f"{c}_cat" for c in categorical],
            outputCols=indexed,
            handleInvalid="keep",
            stringOrderType="alphabetAsc",
        ),
        Imputer(inputCols=[f"{c}_num" for c in numeric], outputCols=imputed, strategy="mean"),
    ]
    if one_hot:
        encoded = [f"{c}_vec" for c in categorical]
        stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
        indexed = encoded
    return stages, indexed + imputed + [HISTORY_FLAG]


def vector_feature_names(params: dict[str, Any]) -> list[str]:
    """Names of the tree model's vector slots (one per feature, in assembler order), for importances."""
    return list(params["features"]["categorical"]) + list(params["features"]["numeric"]) + [HISTORY_FLAG]


def build_model_pipeline(params: dict[str, Any]) -> Pipeline:
    """Indexing + imputation + the configured tree regressor (gbt or random_forest)."""
    stages, inputs = _encoding_stages(params, one_hot=False)
    regressor_conf = params["regressor"]
    regressor = REGRESSORS[regressor_conf["type"]](
        featuresCol=FEATURES_COL,
        labelCol=params["label"],
        predictionCol=PREDICTION_COL,
        seed=int(params["seed"]),
        **(regressor_conf.get("params") or {}),
    )
    return Pipeline(stages=[*stages, VectorAssembler(inputCols=inputs, outputCol=FEATURES_COL), regressor])


def build_linear_pipeline(params: dict[str, Any]) -> Pipeline:
    """The linear-regression baseline: the same features, one-hot encoded."""
    stages, inputs = _encoding_stages(params, one_hot=True)
    linear = LinearRegression(
        featuresCol=FEATURES_COL,
        labelCol=params["label"],
        predictionCol=PREDICTION_COL,
        solver="normal",
        **(params.get("linear_baseline") or {}),
    )
    return Pipeline(stages=[*stages, VectorAssembler(inputCols=inputs, outputCol=FEATURES_COL), linear])
