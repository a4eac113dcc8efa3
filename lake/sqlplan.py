"""The Spark path's structural guard: the statement parsed by the session's own parser and its plan walked.

lake.sqlguard reads the text; this reads the plan Spark builds from it, before anything runs. Allowed: one query
(SELECT, WITH, VALUES, TABLE, pipe syntax), EXPLAIN or DESCRIBE QUERY of one, or DESCRIBE of a table it may read.
Every relation must be one of the views lake.query made for the lake's tables, or a WITH name in scope: a path
(delta.`/x`, `/x`), another catalog's table, a session view or table is refused. So are commands, table-valued
functions other than a few generators, hints, VERSION/TIMESTAMP AS OF (use @vN, --as-of), TRANSFORM ... USING (runs
a program), IDENTIFIER(...) names, qualified function names and the functions lake.sqlguard refuses. Parsing needs
no table to exist and touches no catalog.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from lake.errors import QueryError
from lake.sqlguard import PATH_FORMATS, QueryRefusedError, refused_function

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Nodes Spark's parser builds for a query; any other node (a command, a write, a hint...) is refused.
QUERY_NODES = frozenset(
    """Project Filter Aggregate Sort GlobalLimit LocalLimit LimitAll Offset Distinct Join LateralJoin Union Intersect
    Except SubqueryAlias UnresolvedSubqueryColumnAliases OneRowRelation LocalRelation UnresolvedInlineTable Generate
    Sample RepartitionByExpression Pivot Unpivot UnresolvedHaving WithWindowDefinition PipeOperator
    UnresolvedTVFAliases""".split()
)
# Table-valued functions that only compute rows from their arguments.
SAFE_TABLE_FUNCTIONS = frozenset(
    "range explode explode_outer posexplode posexplode_outer inline inline_outer stack json_tuple".split()
)
NODE_REASONS = {
    "UnresolvedHint": "hints (/*+ ... */) are not allowed",
    "ScriptTransformation": "TRANSFORM ... USING is not allowed: it runs a program",
    "RelationTimeTravel": "VERSION/TIMESTAMP AS OF is not allowed: pin a table as layer.table@vN, or use --as-of",
    "ExpressionWithUnresolvedIdentifier": "IDENTIFIER(...) function names are not allowed; call functions by name",
}
DESCRIBE_TABLE = ("DescribeRelation", "DescribeColumn")
PLAN_EXPRESSION = "org.apache.spark.sql.catalyst.expressions.PlanExpression"
_PATH_LIKE = re.compile(r"[/\\:.]")


def _items(seq: Any) -> Iterator[Any]:
    """The elements of a Scala collection (through py4j)."""
    iterator = seq.iterator()
    while iterator.hasNext():
        yield iterator.next()


def _kind(node: Any) -> str:
    return str(node.getClass().getSimpleName())


def _name(parts: Iterable[str]) -> str:
    """A multipart name as SQL would write it (parts with other characters than letters, digits and _ backticked)."""
    return ".".join(part if re.fullmatch(r"\w+", part) else f"`{part}`" for part in parts)


def _refuse(what: str) -> QueryRefusedError:
    return QueryRefusedError(f"{what} (Spark plan check); lake query reads the lake's tables by name (layer.table)")


class _PlanCheck:
    """Walks a parsed plan without recursion: nodes, their expressions, subqueries and WITH definitions."""

    def __init__(self, spark: SparkSession, views: Iterable[str]) -> None:
        loader = spark._jsc.sc().getClass().getClassLoader()
        self.plan_expression = spark._jvm.java.lang.Class.forName(PLAN_EXPRESSION, False, loader)
        self.views = {view.lower() for view in views}
        self.pending: list[tuple[bool, Any, frozenset[str]]] = []  # (is a plan, node, WITH names in scope)

    def run(self, plan: Any) -> None:
        self.pending.append((True, plan, frozenset()))
        while self.pending:
            is_plan, node, scope = self.pending.pop()
            if is_plan:
                self._plan(node, scope)
            else:
                self._expression(node, scope)

    def _plan(self, node: Any, scope: frozenset[str]) -> None:
        kind = _kind(node)
        if kind == "UnresolvedRelation":
            self._relation(node, scope)
            return
        if kind == "UnresolvedWith":  # each definition sees the ones before it (and itself when RECURSIVE)
            names = set(scope)
            for name, definition, _ in (self._tuple(cte) for cte in _items(node.cteRelations())):
                visible = names | {name.lower()} if node.allowRecursion() else names
                self.pending.append((True, definition, frozenset(visible)))
                names.add(name.lower())
            self.pending.append((True, node.child(), frozenset(names)))
            return
        if kind == "UnresolvedTableValuedFunction":
            parts = list(_items(node.name()))
            if len(parts) != 1 or parts[0].lower() not in SAFE_TABLE_FUNCTIONS:
                raise _refuse(f"table function '{_name(parts)}' is not allowed")
        elif kind == "PlanWithUnresolvedIdentifier":
            raise _refuse(f"IDENTIFIER({node.identifierExpr().sql()}) is not allowed; write the table's name")
        elif kind in NODE_REASONS:
            raise _refuse(NODE_REASONS[kind])
        elif kind not in QUERY_NODES:
            raise _refuse(f"'{kind}' is not allowed: only a query runs (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE)")
        if kind == "WithWindowDefinition":
            self.pending += [(False, spec, scope) for spec in _items(node.windowDefinitions().values())]
        self.pending += [(False, expression, scope) for expression in _items(node.expressions())]
        self.pending += [(True, child, scope) for child in _items(node.children())]

    @staticmethod
    def _tuple(value: Any) -> tuple[str, Any, Any]:
        return value._1(), value._2(), value._3()

    def _relation(self, node: Any, scope: frozenset[str]) -> None:
        parts = [str(part) for part in _items(node.multipartIdentifier())]
        name = _name(parts)
        if len(parts) == 1 and (parts[0].lower() in self.views or parts[0].lower() in scope):
            if node.isStreaming():
                raise _refuse(f"STREAM {name} is not allowed")
            if not node.options().isEmpty():
                raise _refuse(f"options on {name} (WITH (...)) are not allowed")
            return
        if parts[0].lower() in PATH_FORMATS or any(_PATH_LIKE.search(part) for part in parts):
            raise _refuse(f"reading files by path ({name}) is not allowed")
        raise _refuse(f"{name} is not a table of the lake (nor a WITH name of the statement)")

    def _expression(self, expression: Any, scope: frozenset[str]) -> None:
        kind = _kind(expression)
        if kind == "UnresolvedFunction":
            self._function(list(_items(expression.nameParts())))
        elif kind == "UnresolvedGenerator":
            self._function([str(expression.name().funcName())])
        elif kind in NODE_REASONS:
            raise _refuse(NODE_REASONS[kind])
        if self.plan_expression.isInstance(expression):  # a subquery: its plan is no child of the expression
            self.pending.append((True, expression.plan(), scope))
        self.pending += [(False, child, scope) for child in _items(expression.children())]

    @staticmethod
    def _function(parts: list[str]) -> None:
        if len(parts) != 1:
            raise _refuse(f"qualified function names ({_name(parts)}) are not allowed; call built-in functions by name")
        if refused_function(parts[0]):
            raise _refuse(f"function '{parts[0]}' is not allowed (it reads files, runs SQL text or calls the JVM)")


def _query_of(plan: Any, views: set[str]) -> Any | None:
    """The query a statement runs (EXPLAIN's, DESCRIBE QUERY's), None for a DESCRIBE of a view; refuses others."""
    kind = _kind(plan)
    if kind == "ExplainCommand":
        return plan.logicalPlan()
    if kind == "DescribeQueryCommand":
        return plan.plan()
    if kind in DESCRIBE_TABLE:
        relation = plan.relation()
        parts = (
            [str(part) for part in _items(relation.multipartIdentifier())]
            if _kind(relation).startswith("UnresolvedTableOrView")
            else []
        )
        if len(parts) == 1 and parts[0].lower() in views:
            return None
        raise _refuse(f"DESCRIBE {_name(parts) or '...'} is not allowed: describe a lake table as layer.table")
    if kind.startswith("Show"):
        raise _refuse(f"'{kind}' is not run on Spark; SHOW statements run on the fast engine (--engine fast or auto)")
    return plan


def check_spark_plan(spark: SparkSession, sql: str, views: Iterable[str]) -> None:
    """Parses sql with the session's parser and refuses it unless it is one query over views (and its WITH names).

    Raises QueryRefusedError naming what is refused, or QueryError when Spark cannot parse the statement.
    """
    from pyspark.errors import ParseException

    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql)
    except ParseException as exc:
        raise QueryError(f"Spark: {str(exc).strip().splitlines()[0]}") from exc
    allowed = {view.lower() for view in views}
    query = _query_of(plan, allowed)
    if query is not None:
        _PlanCheck(spark, allowed).run(query)
