"""The analyst's SQL surface: an allow-list over ClickHouse's own parse tree.

``driftwatch query`` runs SQL typed by a person. ``readonly=1`` stops writes,
DDL and ``SET``, but on the embedded engine it does not stop a read from
reaching the filesystem (``file('/etc/passwd')``), the process environment
(``file('/proc/self/environ')``) or a write through ``INTO OUTFILE``. So the
statement is parsed by the engine itself (``EXPLAIN AST``, which executes
nothing) and every node of the tree must be on an allow-list:

- the statement is a ``SELECT`` (with ``UNION``, ``INTERSECT``, ``EXCEPT``,
  ``WITH``, subqueries, joins, ``ARRAY JOIN`` and window functions), with no
  ``INTO OUTFILE``, ``FORMAT`` or ``SETTINGS`` clause;
- ``FROM`` names tables, subqueries or common table expressions, never a table
  function (``file``, ``url``, ``remote``, ``s3``, ``numbers`` ...); a
  qualified name must be one of the store's own tables in its own database,
  so ``system.*`` and ``information_schema.*`` are out;
- every function is one whose category in ``system.functions`` is plain
  computation (arithmetic, strings, dates, arrays, JSON, aggregates ...), with
  aggregate-function combinators (``countIf``, ``quantilesIf``). Categories
  that reach outside the data (``Other`` holds ``file``, ``getSetting``,
  ``hostName``; ``Dictionary``, ``Introspection``, ``Machine Learning`` ...)
  are not listed, so a function added by a later engine version is refused
  until someone reviews its category.

Anything the parser shows that is not listed is refused, naming it.

Examples
--------
>>> guard = SqlGuard({"count": "Aggregate Functions", "file": "Other"}, (), tables={"alerts"})
>>> guard.check(parse_explain(["SelectWithUnionQuery (children 1)", " ExpressionList (children 1)",
...     "  SelectQuery (children 1)", "   ExpressionList (children 1)", "    Function file (children 1)"]))
Traceback (most recent call last):
...
monitor.errors.RefusedQueryError: function file is not allowed in a query (category 'Other')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.errors import RefusedQueryError

__all__ = ["ALLOWED_CATEGORIES", "CATALOGUE_SQL", "COMBINATORS_SQL", "SqlGuard", "parse_explain"]

# Each function with its category; an alias takes the category of the function it names.
CATALOGUE_SQL = ("SELECT f.name, if(f.alias_to = '', f.categories, t.categories) FROM system.functions AS f "
                 "LEFT JOIN system.functions AS t ON t.name = f.alias_to")
COMBINATORS_SQL = "SELECT name FROM system.aggregate_function_combinators"


# Categories of ``system.functions`` whose members compute on their arguments only.
ALLOWED_CATEGORIES = frozenset({
    "Aggregate Functions", "Arithmetic", "Arrays", "Bit", "Bitmap", "Comparison", "Conditional",
    "Dates and Times", "Distance", "Encoding", "Financial", "Hash", "IP Address", "JSON", "Logical", "Map",
    "Mathematical", "Null", "Rounding", "String", "String Replacement", "String Search", "String Splitting",
    "Time Series", "Time Window", "Tuple", "Type Conversion", "ULID", "URL", "UUID",
})
# Parser-internal names for syntax (lambda, CASE) and a few uncategorised pure helpers.
_SYNTAX_FUNCTIONS = frozenset({"lambda", "tuple", "array", "caseWithExpression", "_CAST", "formatReadableSize",
                               "formatReadableQuantity", "formatReadableTimeDelta", "toTypeName",
                               "transform", "bar", "identity", "isFinite", "isInfinite", "isNaN",
                               "runningDifference", "neighbor", "row_number", "rank", "dense_rank"})
# AST node kinds a read-only SELECT is built from (what EXPLAIN AST prints).
_NODE_KINDS = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "ExpressionList", "Identifier",
    "Function", "Literal", "Asterisk", "QualifiedAsterisk", "ColumnsRegexpMatcher", "ColumnsListMatcher",
    "QualifiedColumnsRegexpMatcher", "QualifiedColumnsListMatcher", "ColumnsTransformerList",
    "ColumnsExceptTransformer", "ColumnsReplaceTransformer", "ColumnsReplaceTransformer::Replacement",
    "ColumnsApplyTransformer", "TablesInSelectQuery", "TablesInSelectQueryElement", "TableExpression",
    "TableIdentifier", "TableJoin", "ArrayJoin", "Subquery", "WithElement", "OrderByElement",
    "WindowDefinition", "WindowListElement", "QueryParameter", "InterpolateElement",
})
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(*\s*([A-Za-z]+)", re.DOTALL)


@dataclass(slots=True)
class Node:
    """One line of ``EXPLAIN AST``: its kind, the name it carries, its children."""

    kind: str
    name: str
    children: list[Node] = field(default_factory=list)


def parse_explain(lines: Sequence[str]) -> Node:
    """The tree ``EXPLAIN AST`` prints, one node a line, children indented by one space."""
    root: Node | None = None
    stack: list[tuple[int, Node]] = []
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        words = line.strip().split(" ", 2)
        node = Node(words[0], words[1] if len(words) > 1 and not words[1].startswith("(") else "")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1].children.append(node)
        elif root is None:
            root = node
        else:
            raise RefusedQueryError("a query must be one statement")
        stack.append((depth, node))
    if root is None:
        raise RefusedQueryError("the engine returned no parse tree for the query")
    return root


class SqlGuard:
    """Checks a parse tree against the allow-list.

    Parameters
    ----------
    functions
        Function name to category, as ``system.functions`` lists them.
    combinators
        Aggregate-function combinator suffixes (``If``, ``Array``, ``Merge`` ...).
    tables
        The store's own tables, the only ones a qualified name may reach.
    database
        The store's database: ``database.table`` is allowed for its tables.
    """

    def __init__(self, functions: Mapping[str, str], combinators: Iterable[str], *, tables: Iterable[str],
                 database: str = "default") -> None:
        self._categories = dict(functions)
        self._aggregates = {name for name, category in self._categories.items() if category == "Aggregate Functions"}
        self._combinators = sorted(set(combinators), key=len, reverse=True)
        self._tables = frozenset(tables)
        self._database = database

    @staticmethod
    def precheck(sql: str) -> None:
        """Refuse anything that does not open as a SELECT before asking the parser."""
        match = _FIRST_WORD.match(sql)
        if not match or match.group(1).upper() not in ("SELECT", "WITH"):
            raise RefusedQueryError(f"only SELECT statements may be run; got {sql.strip()[:40]!r}")

    def check(self, root: Node, *, explain_format: str | None = None) -> None:
        """Raise :class:`RefusedQueryError` naming the first node that is not allowed.

        ``explain_format`` is the ``FORMAT`` the caller appended to its
        ``EXPLAIN AST`` statement: the parser hangs it on the outermost select,
        so it must be that select's last child, and is then set aside.
        """
        if root.kind != "SelectWithUnionQuery":
            raise RefusedQueryError(f"only SELECT statements may be run; got {root.kind}")
        if explain_format is not None:
            last = root.children[-1] if root.children else None
            if last is None or (last.kind, last.name) != ("Identifier", explain_format):
                raise RefusedQueryError("INTO OUTFILE and FORMAT clauses are not allowed in a query")
            root = Node(root.kind, root.name, root.children[:-1])
        pending: list[tuple[Node, str]] = [(root, "")]
        while pending:
            node, parent = pending.pop()
            self._check_node(node, parent)
            pending.extend((child, node.kind) for child in node.children)

    def _check_node(self, node: Node, parent: str) -> None:
        if node.kind not in _NODE_KINDS:
            clause = "SETTINGS clause" if node.kind == "Set" else node.kind
            raise RefusedQueryError(f"{clause} is not allowed in a query")
        if node.kind == "SelectWithUnionQuery" and len(node.children) != 1:
            raise RefusedQueryError("INTO OUTFILE and FORMAT clauses are not allowed in a query")
        if node.kind == "Function":
            if parent == "TableExpression":
                raise RefusedQueryError(f"table function {node.name} is not allowed in a query; name a table")
            self._check_function(node.name)
        elif node.kind == "TableIdentifier":
            database, _, table = node.name.rpartition(".")
            if database and (database != self._database or table not in self._tables):
                raise RefusedQueryError(f"table {node.name} is not one of the store's tables "
                                        f"({', '.join(sorted(self._tables))})")

    def _check_function(self, name: str) -> None:
        if name in _SYNTAX_FUNCTIONS or self._categories.get(name) in ALLOWED_CATEGORIES:
            return
        if self._is_combined_aggregate(name):
            return
        category = self._categories.get(name)
        why = f"category {category!r}" if category is not None else "unknown function"
        raise RefusedQueryError(f"function {name} is not allowed in a query ({why})")

    def _is_combined_aggregate(self, name: str) -> bool:
        """``quantilesIfOrNull`` is ``quantiles`` with the ``If`` and ``OrNull`` combinators."""
        base = name
        while True:
            if base in self._aggregates and self._categories.get(base) in ALLOWED_CATEGORIES:
                return base != name
            suffix = next((c for c in self._combinators if base.endswith(c) and len(base) > len(c)), None)
            if suffix is None:
                return False
            base = base[: -len(suffix)]
