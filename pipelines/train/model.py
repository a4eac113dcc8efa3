"""The Spark ML pipelines: feature preparation (fitted once per training frame), the tree regressor, the target
transform and the linear baseline; and how a fitted preparation and regressor become one servable model."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.ml import Pipeline, PipelineModel, Transformer
from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler
from pyspark.ml.regression import GBTRegressor, LinearRegression, RandomForestRegressor
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.train.params import ModelParams

FEATURES_TABLE = "gold.trip_features"
PREDICTION_COL = "prediction"
FEATURES_COL = "features"
TARGET_COL = "target"  # what the regressor fits: the label, or log1p(label)
RAW_PREDICTION_COL = "target_prediction"  # the regressor's output before expm1, when the target is log1p
# Added by the preparation stage: 1.0 when the zone pair had trips in gold's trailing window.
HISTORY_FLAG = "pair_has_history"
HISTORY_SOURCE = "pair_median_duration"
UNKNOWN = "unknown"  # the category of a null categorical value
REGRESSORS = {"gbt": GBTRegressor, "random_forest": RandomForestRegressor}


def target_column(params: ModelParams) -> F.Column:
    """The regressor's label: log1p(minutes) trains for relative error (RMSLE); identity for squared minutes."""
    label = F.col(params.label).cast("double")
    return (F.log1p(label) if params.target == "log1p" else label).alias(TARGET_COL)


def _as_text(column: str) -> str:
    return f"COALESCE(CAST(`{column}` AS STRING), '{UNKNOWN}')"


def _category(column: str, kept: Mapping[str, tuple[str, ...]] | None) -> str:
    """The category text of a column; with `kept`, values outside kept[column] become 'unknown'."""
    if kept is None or column not in kept:
        return f"{_as_text(column)} AS `{column}_cat`"
    values = ", ".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" for value in kept[column])
    test = f"{_as_text(column)} IN ({values})" if values else "FALSE"
    return f"CASE WHEN {test} THEN {_as_text(column)} ELSE '{UNKNOWN}' END AS `{column}_cat`"


def frequent_categories(train: DataFrame, params: ModelParams) -> dict[str, tuple[str, ...]] | None:
    """Per categorical feature, the values with at least min_category_rows training rows (None: keep all).

    One aggregation; what reaches the driver is one row per distinct category (a few hundred zone ids).
    """
    if params.min_category_rows <= 0 or not params.categorical:
        return None
    pairs = F.explode(
        F.array(*[F.struct(F.lit(c).alias("column"), F.expr(_as_text(c)).alias("value")) for c in params.categorical])
    )
    counted = train.select(pairs.alias("p")).groupBy("p.column", "p.value").count()
    kept: dict[str, list[str]] = {c: [] for c in params.categorical}
    for row in counted.where(F.col("count") >= params.min_category_rows).collect():
        kept[row["column"]].append(row["value"])
    return {column: tuple(sorted(values)) for column, values in kept.items()}


def _prepare(params: ModelParams, kept: Mapping[str, tuple[str, ...]] | None = None) -> SQLTransformer:
    """Casts categoricals to text ('unknown' for null, and for rare values when `kept` is given) and numerics to
    double, and adds the history flag."""
    categorical = [_category(c, kept) for c in params.categorical]
    numeric = [f"CAST(`{c}` AS DOUBLE) AS `{c}_num`" for c in params.numeric]
    flag = [f"CAST(`{HISTORY_SOURCE}` IS NOT NULL AS DOUBLE) AS {HISTORY_FLAG}"] if _has_history(params) else []
    return SQLTransformer(statement=f"SELECT *, {', '.join(categorical + numeric + flag)} FROM __THIS__")


def _has_history(params: ModelParams) -> bool:
    return HISTORY_SOURCE in params.numeric


def vector_feature_names(params: ModelParams) -> list[str]:
    """Names of the tree model's vector slots (one per feature, in assembler order), for importances."""
    return [*params.categorical, *params.numeric, *([HISTORY_FLAG] if _has_history(params) else [])]


def build_preparation(
    params: ModelParams, one_hot: bool = False, kept: Mapping[str, tuple[str, ...]] | None = None
) -> Pipeline:
    """Typing, indexing (one-hot for linear models), mean imputation and assembly into the features vector."""
    indexed = [f"{c}_idx" for c in params.categorical]
    imputed = [f"{c}_imp" for c in params.numeric]
    stages: list = [
        _prepare(params, kept),
        StringIndexer(
            inputCols=[f"{c}_cat" for c in params.categorical],
            outputCols=indexed,
            handleInvalid="keep",
            stringOrderType="alphabetAsc",
        ),
        Imputer(inputCols=[f"{c}_num" for c in params.numeric], outputCols=imputed, strategy="mean"),
    ]
    if one_hot:
        encoded = [f"{c}_vec" for c in params.categorical]
        stages.append(OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
        indexed = encoded
    inputs = indexed + imputed + ([HISTORY_FLAG] if _has_history(params) else [])
    stages.append(VectorAssembler(inputCols=inputs, outputCol=FEATURES_COL))
    return Pipeline(stages=stages)


def fit_preparation(train: DataFrame, params: ModelParams) -> PipelineModel:
    """The tree model's preparation fitted on its training rows (rare categories joined to 'unknown' first)."""
    return build_preparation(params, kept=frequent_categories(train, params)).fit(train)


def build_regressor(params: ModelParams):
    """The configured tree ensemble, fitting TARGET_COL from the assembled features vector."""
    return REGRESSORS[params.regressor_type](
        featuresCol=FEATURES_COL,
        labelCol=TARGET_COL,
        predictionCol=RAW_PREDICTION_COL if params.target == "log1p" else PREDICTION_COL,
        seed=params.seed,
        **params.regressor_kwargs,
    )


def build_linear(params: ModelParams) -> LinearRegression:
    """The linear-regression baseline (squared minutes, on one-hot features)."""
    return LinearRegression(
        featuresCol=FEATURES_COL,
        labelCol=TARGET_COL,
        predictionCol=PREDICTION_COL,
        solver="normal",
        **dict(params.linear_baseline),
    )


def back_transform(params: ModelParams) -> list[Transformer]:
    """The stage that turns a log1p-scale prediction back into minutes (none for the identity target)."""
    if params.target != "log1p":
        return []
    return [SQLTransformer(statement=f"SELECT *, EXPM1({RAW_PREDICTION_COL}) AS {PREDICTION_COL} FROM __THIS__")]


def servable(preparation: PipelineModel, regressor: Transformer, params: ModelParams) -> PipelineModel:
    """One model from the raw gold.trip_features columns to `prediction` in minutes (what is logged and scored)."""
    return PipelineModel(stages=[*preparation.stages, regressor, *back_transform(params)])


def regressor_stage(model: PipelineModel) -> Transformer:
    """The fitted tree ensemble inside a servable model."""
    return next(stage for stage in model.stages if hasattr(stage, "featureImportances"))
