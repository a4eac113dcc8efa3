"""Schema contracts from the table registry (conf/tables.yaml): type names parsed without a JVM, and `conform`,
the one select that makes a frame match its table's contract before any write."""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lake.errors import ConfigError
from lake.expressions import reused

ATOMIC_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
_GENERIC = re.compile(r"^(array|map)<(.*)>$")


class SchemaContractError(AssertionError):
    """A frame handed to a write does not match its table's contract: a bug in the stage, named with the columns."""


def parse_type(text: str) -> T.DataType:
    """string | int | bigint | double | boolean | date | timestamp | array<T> | map<K,V>."""
    text = text.strip().lower()
    if text in ATOMIC_TYPES:
        return ATOMIC_TYPES[text]
    generic = _GENERIC.match(text)
    if generic and generic.group(1) == "array":
        return T.ArrayType(parse_type(generic.group(2)))
    if generic and "," in generic.group(2):
        key, value = generic.group(2).split(",", 1)
        return T.MapType(parse_type(key), parse_type(value))
    raise ConfigError(f"unknown column type '{text}' (known: {', '.join(ATOMIC_TYPES)}, array<T>, map<K,V>)")


def parse_columns(table: str, columns: dict[str, str]) -> T.StructType:
    """The StructType of a registry entry's `columns:` mapping (`name: type [not null]`)."""
    fields = []
    for name, declared in columns.items():
        text = str(declared).strip()
        nullable = not text.lower().endswith("not null")
        type_text = text[: -len("not null")] if not nullable else text
        try:
            fields.append(T.StructField(name, parse_type(type_text), nullable))
        except ConfigError as exc:
            raise ConfigError(f"conf/tables.yaml: {table}.{name}: {exc}") from exc
    return T.StructType(fields)


def conform(df: DataFrame, schema: T.StructType, table: str = "") -> DataFrame:
    """df as exactly the contract's columns, in order, cast to the contract's types.

    A missing column, or a column the contract does not name, is refused: silently adding nulls or dropping a
    column would change the table's meaning.
    """
    names = set(df.columns)
    wanted = schema.fieldNames()
    missing = [name for name in wanted if name not in names]
    extra = [name for name in df.columns if name not in set(wanted)]
    if missing or extra:
        raise SchemaContractError(
            f"{table or 'table'}: frame does not match the contract in conf/tables.yaml"
            + (f"; missing {missing}" if missing else "")
            + (f"; not in the contract {extra}" if extra else "")
        )
    types = dict(df.dtypes)
    key = ("conform", schema.simpleString(), tuple(types[name] for name in wanted))
    return df.select(*reused(key, lambda: _conformed(schema, types)))


def contract_columns(schema: T.StructType) -> list[Column]:
    """The contract's columns, in order, each cast to its type: the select list that states a table's schema over a
    frame holding those columns and maybe more (built once per schema and Spark context)."""
    return reused(
        ("contract", schema.simpleString()),
        lambda: [F.col(f"`{field.name}`").cast(field.dataType).alias(field.name) for field in schema.fields],
    )


def _conformed(schema: T.StructType, types: dict[str, str]) -> list[Column]:
    return [
        F.col(f"`{field.name}`")
        if types[field.name] == field.dataType.simpleString()
        else F.col(f"`{field.name}`").cast(field.dataType).alias(field.name)
        for field in schema.fields
    ]
