"""The KQL subset the sandbox's Azure Resource Graph endpoint understands.

A tokenizer, a recursive-descent parser and an evaluator for the ``Resources`` table. Parsing
compiles as it goes: every expression becomes a closure with a static column type, so unknown
columns, functions and operators are reported before any row is read, as Kusto does.

Supported: the tables ``Resources`` and ``ComputeResources`` (any case; the latter holds Uniform
scale sets' instances, with the same columns) and the tabular operators ``where``, ``extend``,
``project``, ``project-away``, ``project-rename``, ``order by``/``sort by`` (``asc``/``desc``,
``nulls first``/``nulls last``; desc by default), ``top N by``, ``take``/``limit``, ``count``
(one row, column ``Count``) and ``summarize`` (``[name =] agg(...), ... [by [name =] expr, ...]``
with the aggregates of ``graph_aggregates``; one row per group, by-columns first, a group per
distinct key in first-seen order; no ``by`` gives one row even over no rows) and ``union
(Table | ...), ...`` (the rows so far, then each parenthesised query's; the columns of all).
Expressions: string literals ('...', "..." with backslash escapes, @'...' verbatim), numbers,
``true``/``false``/``null``, columns (``['name']`` too), ``a.b`` and ``a['b']``/``a[0]``,
``== != < <= > >=``, ``=~ !~``, ``in``/``in~``/``!in``/``!in~``, ``contains has startswith
endswith`` (each with ``!`` and ``_cs`` variants), ``and``, ``or``, ``not()``, parentheses, and
the functions in ``_FUNCS``. Semantics follow Kusto: string operators are case-insensitive unless
``_cs``; a missing property is null and string columns are never null (``""``); ``==`` with
one null side is false and ``!=`` true; ``and``/``or`` are three-valued and ``where`` keeps only
rows whose predicate is true. Datetimes are kept as the ISO strings they came in as.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from core.sandbox.graph_aggregates import AGGREGATES, default_name, group_key

Row = dict[str, Any]
Step = Callable[[list[Row]], list[Row]]

#: The ``Resources`` table: column name to the type ARG reports for it, in ARG's order.
RESOURCE_COLUMNS: dict[str, str] = {
    "id": "string", "name": "string", "type": "string", "tenantId": "string", "kind": "string",
    "location": "string", "resourceGroup": "string", "subscriptionId": "string",
    "managedBy": "string", "sku": "object", "plan": "object", "properties": "object",
    "tags": "object", "identity": "object", "zones": "object", "extendedLocation": "object",
}
TABLES = ("resources", "computeresources")
OPERATORS = ("where", "extend", "project", "project-away", "project-rename", "order by",
             "sort by", "top", "take", "limit", "count", "summarize", "union")
_TOKEN = re.compile(
    r"(?P<skip>\s+|//[^\n]*)"
    r"|(?P<str>'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")"
    r"|(?P<vstr>@'[^'\n]*(?:''[^'\n]*)*'|@\"[^\"\n]*(?:\"\"[^\"\n]*)*\")"
    r"|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    # Hyphenated words are operators (project-away); a leading ! or trailing ~ makes !has, in~.
    r"|(?P<word>!?[A-Za-z_]\w*(?:-[A-Za-z_]\w*)*~?)"
    r"|(?P<op>==|!=|=~|!~|<=|>=|[|(),.\[\]=<>-])"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
_STR_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda h, n: n in h, "startswith": str.startswith, "endswith": str.endswith,
    # has: a whole term, i.e. not glued to letters or digits on either side.
    "has": lambda h, n: re.search(rf"(?<![^\W_]){re.escape(n)}(?![^\W_])", h) is not None,
}
_STR_OPS = {f"{neg}{base}{cs}" for neg in ("", "!") for base in _STR_TESTS for cs in ("", "_cs")}
_IN_OPS = ("in", "in~", "!in", "!in~")
_ORDER_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class KqlError(Exception):
    """A query the sandbox cannot run; ``code`` is the ARG error code, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class _Tok:
    kind: str  # str, num, word, op, eof
    text: str
    value: Any
    pos: int


@dataclass(frozen=True)
class _Expr:
    fn: Callable[[Row], Any]
    type: str
    name: str | None = None  # the column name project gives it without "name ="


@dataclass(frozen=True)
class CompiledQuery:
    """A parsed query: its output ``columns`` (name to ARG column type) and its operators."""

    columns: dict[str, str]
    steps: tuple[Step, ...]
    table: str = "resources"
    """The table the query reads, lower case: ``resources`` or ``computeresources``."""
    sources: dict[str, list[Row]] = field(default_factory=dict)
    """Filled by ``run`` with every table's rows, for the ``union`` steps to read."""

    def run(self, resources: Iterable[Mapping[str, Any]],
            compute_resources: Iterable[Mapping[str, Any]] = ()) -> list[Row]:
        """Evaluates the query.

        Args:
            resources: Rows of the ``Resources`` table; absent string columns read as ``""``,
                absent dynamic ones as null, and keys outside the table's schema are not seen.
            compute_resources: Rows of the ``ComputeResources`` table (same columns).

        Returns:
            The output rows, each a dict in ``columns`` order. They share nested values with
            ``resources``; copy before handing them out.
        """
        self.sources["resources"] = _table_rows(resources)
        self.sources["computeresources"] = _table_rows(compute_resources)
        rows = self.sources[self.table]
        for step in self.steps:
            rows = step(rows)
        return rows


def _table_rows(resources: Iterable[Mapping[str, Any]]) -> list[Row]:
    return [{c: _to_str(r.get(c)) if t == "string" else r.get(c)
             for c, t in RESOURCE_COLUMNS.items()} for r in resources]


def compile_query(text: str) -> CompiledQuery:
    """Parses and checks a query against the ``Resources`` schema.

    Args:
        text: The KQL query.

    Returns:
        The compiled query, ready to ``run`` over any number of row sets.

    Raises:
        KqlError: A syntax error, or a table, operator, function or column the subset lacks; the
            message names the offending token and its 1-based ``[line,column]``.
    """
    return _Parser(text).query()


def _to_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _parse_dt(v: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(v) if isinstance(v, str) else None
    except ValueError:
        return None
    # Kusto datetimes are UTC; naive ISO strings mean UTC.
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _to_int(v: Any) -> int | None:
    if _is_num(v) or isinstance(v, bool):
        return int(v)
    try:
        return int(v) if isinstance(v, str) else None
    except ValueError:
        return None


def _to_real(v: Any) -> float | None:
    try:
        return float(v) if _is_num(v) or isinstance(v, str) else None
    except ValueError:
        return None


def _to_bool(v: Any) -> bool | None:
    if isinstance(v, bool) or _is_num(v):
        return bool(v)
    return {"true": True, "false": False}.get(v.strip().lower()) if isinstance(v, str) else None


def _coalesce(*vs: Any) -> Any:
    # Kusto's coalesce skips nulls and, for strings, empty strings.
    return next((v for v in vs if v is not None and v != ""), "" if "" in vs else None)


def _index(base: Any, key: Any) -> Any:
    if isinstance(base, dict) and isinstance(key, str):
        return base.get(key)
    if isinstance(base, list) and isinstance(key, int) and -len(base) <= key < len(base):
        return base[key]
    return None


def _equal(a: Any, b: Any) -> bool | None:
    if a is None or b is None:
        return None if a is b else False
    if isinstance(a, bool) != isinstance(b, bool):
        return False  # Python's True == 1 is not Kusto's
    return bool(a == b)


def _order(op: str, a: Any, b: Any, as_dt: bool) -> bool | None:
    if as_dt:
        a, b = _parse_dt(a), _parse_dt(b)
    ok = (_is_num(a) and _is_num(b)) or (type(a) is type(b) and isinstance(a, str | datetime))
    if not ok:
        return None
    return bool(_ORDER_OPS[op](a, b))


def _and(a: Any, b: Any) -> bool | None:
    return False if a is False or b is False else None if a is None or b is None else True


def _or(a: Any, b: Any) -> bool | None:
    return True if a is True or b is True else None if a is None or b is None else False


def _const(value: Any) -> Callable[[Row], Any]:
    return lambda _r: value


def _member(base: _Expr, key: _Expr, name: str | None) -> _Expr:
    return _Expr(lambda r: _index(base.fn(r), key.fn(r)), "object", name)


def _compare_eq(negate: bool) -> Callable[[Any, Any], bool | None]:
    def cmp(a: Any, b: Any) -> bool | None:
        eq = _equal(a, b)
        return None if eq is None else eq != negate
    return cmp


def _string_test(op: str) -> Callable[[Any, Any], bool]:
    # String operators see both sides as strings (a null dynamic is ""); only _cs ones fold no case.
    negate, base = op.startswith("!"), op.lstrip("!").removesuffix("_cs")
    test = _STR_TESTS.get(base, str.__eq__)  # =~ and !~ are case-insensitive equality
    fold: Callable[[str], str] = (lambda s: s) if op.endswith("_cs") else str.lower
    return lambda a, b: test(fold(_to_str(a)), fold(_to_str(b))) != negate


def _in_list(op: str, left: _Expr, items: list[_Expr]) -> _Expr:
    negate, fold = op.startswith("!"), op.endswith("~")

    def member(r: Row) -> bool:
        v = left.fn(r)
        if fold:
            found = any(_to_str(v).lower() == _to_str(i.fn(r)).lower() for i in items)
        else:
            found = any(_equal(v, i.fn(r)) is True for i in items)
        return found != negate
    return _Expr(member, "boolean")


# name: (min args, max args, result type or index of the argument whose type it takes, impl)
def _split(source: Any, delimiter: Any, index: Any = None) -> Any:
    """Kusto's ``split(source, delimiter [, index])``: a dynamic array of the pieces, or the
    one piece at ``index`` as a one-element array (empty when out of range)."""
    pieces = _to_str(source).split(_to_str(delimiter)) if _to_str(delimiter) else []
    if index is None:
        return pieces
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(pieces):
        return []
    return [pieces[index]]


_FUNCS: dict[str, tuple[int, int, str | int, Callable[..., Any]]] = {
    "split": (2, 3, "object", _split),
    "tostring": (1, 1, "string", _to_str),
    "tolower": (1, 1, "string", lambda v: _to_str(v).lower()),
    "toupper": (1, 1, "string", lambda v: _to_str(v).upper()),
    "strcat": (1, 64, "string", lambda *vs: "".join(map(_to_str, vs))),
    "strlen": (1, 1, "integer", lambda v: len(_to_str(v))),
    "coalesce": (2, 64, 0, _coalesce),
    "iff": (3, 3, 1, lambda c, a, b: a if c is True else b),
    "iif": (3, 3, 1, lambda c, a, b: a if c is True else b),
    "isempty": (1, 1, "boolean", lambda v: v is None or v == ""),
    "isnotempty": (1, 1, "boolean", lambda v: not (v is None or v == "")),
    "isnull": (1, 1, "boolean", lambda v: v is None),
    "isnotnull": (1, 1, "boolean", lambda v: v is not None),
    "not": (1, 1, "boolean", lambda v: (not v) if isinstance(v, bool) else None),
    "todatetime": (1, 1, "datetime", lambda v: v if _parse_dt(v) else None),
    "tobool": (1, 1, "boolean", _to_bool),
    "toboolean": (1, 1, "boolean", _to_bool),
    "toint": (1, 1, "integer", _to_int),
    "tolong": (1, 1, "integer", _to_int),
    "todouble": (1, 1, "number", _to_real),
    "toreal": (1, 1, "number", _to_real),
}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks, self.i = self._tokenize(text), 0
        self.schema: dict[str, str] = dict(RESOURCE_COLUMNS)
        self.depth = 0
        """How many ``union`` parentheses the parser is inside."""
        self.sources: dict[str, list[Row]] = {}
        """Every table's rows while a compiled query runs (``union`` reads the others)."""

    # -- tokens ---------------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[_Tok]:
        toks, pos = [], 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                quote = text[pos] in "'\"@"
                why = "unterminated string literal" if quote else "unexpected character"
                self._fail(_Tok("op", text[pos], None, pos), why)
            kind, raw = m.lastgroup or "", m.group()
            if kind == "str":
                toks.append(_Tok(kind, raw, self._unescape(raw, pos), pos))
            elif kind == "vstr":
                toks.append(_Tok("str", raw, raw[2:-1].replace(raw[1] * 2, raw[1]), pos))
            elif kind == "num":
                toks.append(_Tok(kind, raw, float(raw) if "." in raw or "e" in raw.lower()
                                 else int(raw), pos))
            elif kind != "skip":
                toks.append(_Tok(kind, raw, raw, pos))
            pos = m.end()
        return [*toks, _Tok("eof", "<end of query>", None, len(text))]

    def _unescape(self, raw: str, pos: int) -> str:
        def one(m: re.Match[str]) -> str:
            esc = m.group(1)
            if esc in _ESCAPES:
                return _ESCAPES[esc]
            if re.fullmatch(r"u[0-9a-fA-F]{4}", esc):
                return chr(int(esc[1:], 16))
            self._fail(_Tok("str", raw, None, pos + m.start()), f"unknown escape '\\{esc[0]}'")
        return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", one, raw[1:-1])

    def _fail(self, tok: _Tok, why: str, code: str = "ParserFailure") -> NoReturn:
        line = self.text.count("\n", 0, tok.pos) + 1
        col = tok.pos - (self.text.rfind("\n", 0, tok.pos) + 1) + 1
        where = f"'{tok.text}' on line [{line},{col}]"
        if code == "ParserFailure":
            raise KqlError(code, f"Query could not be parsed at {where}: {why}")
        raise KqlError(code, f"{why} (at {where})")

    def _peek(self) -> _Tok:
        return self.toks[self.i]

    def _next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += tok.kind != "eof"
        return tok

    def _at(self, kind: str, *texts: str) -> bool:
        tok = self.toks[self.i]
        return tok.kind == kind and (not texts or tok.text in texts)

    def _expect(self, kind: str, text: str | None, what: str) -> _Tok:
        if not self._at(kind, *([text] if text else [])):
            self._fail(self._peek(), f"expected {what}")
        return self._next()

    # -- tabular operators ----------------------------------------------------------------------
    def query(self) -> CompiledQuery:
        table = self._table()
        steps = self._pipeline()
        if not self._at("eof"):
            self._fail(self._peek(), "expected '|' and an operator, or the end of the query")
        return CompiledQuery(dict(self.schema), tuple(steps), table, self.sources)

    def _table(self) -> str:
        table = self._next()
        if table.kind != "word":
            self._fail(table, "a query starts with the table name 'Resources'")
        if table.text.lower() not in TABLES:
            self._fail(table, f"Table '{table.text}' is invalid, unsupported or disallowed: the "
                       "sandbox serves only the 'Resources' and 'ComputeResources' tables",
                       "DisallowedLogicalTableName")
        return table.text.lower()

    def _pipeline(self) -> list[Step]:
        steps = []
        while self._at("op", "|"):
            self._next()
            steps.append(self._operator())
        return steps

    def _ended(self) -> bool:
        """At the end of the query, or of the parenthesised query a ``union`` reads."""
        return self._at("eof") or (self.depth > 0 and self._at("op", ")"))

    def _union(self) -> Step:
        """``union (Table | ...), ...``: the rows so far, then each subquery's, with every
        column of either (a row lacking one has null, or "" for a string)."""
        subqueries: list[tuple[str, list[Step]]] = []
        outer = self.schema
        merged = dict(outer)
        while True:
            self._expect("op", "(", "'(' and a query after 'union'")
            self.schema, self.depth = dict(RESOURCE_COLUMNS), self.depth + 1
            table = self._table()
            steps = self._pipeline()
            self._expect("op", ")", "')' at the end of the union's query")
            self.depth -= 1
            for name, kind in self.schema.items():
                merged.setdefault(name, kind)
            subqueries.append((table, steps))
            if not self._at("op", ","):
                break
            self._next()
        self.schema = merged
        sources = self.sources
        blank = {name: "" if kind == "string" else None for name, kind in merged.items()}

        def step(rows: list[Row]) -> list[Row]:
            out = [{**blank, **row} for row in rows]
            for table, steps in subqueries:
                more = [dict(row) for row in sources.get(table, [])]
                for inner in steps:
                    more = inner(more)
                out.extend({**blank, **row} for row in more)
            return out
        return step

    def _operator(self) -> Step:
        tok = self._expect("word", None, f"an operator ({', '.join(OPERATORS)})")
        op = tok.text
        if op in ("order", "sort"):
            self._expect("word", "by", f"'by' after '{op}'")
            return self._sort(None)
        if op == "top":
            n = self._row_count(op)
            self._expect("word", "by", "'by' after 'top N'")
            return self._sort(n)
        if op in ("take", "limit"):
            n = self._row_count(op)
            return lambda rows: rows[:n]
        if op == "count":
            self.schema = {"Count": "integer"}
            return lambda rows: [{"Count": len(rows)}]
        handler = {"where": self._where, "extend": self._extend, "project": self._project,
                   "project-away": self._project_away, "project-rename": self._rename,
                   "summarize": self._summarize, "union": self._union}.get(op)
        if handler is None:
            self._fail(tok, f"Operator '{op}' is not supported by the sandbox's KQL subset; it "
                       f"supports: {', '.join(OPERATORS)}", "UnsupportedOperator")
        return handler()

    def _row_count(self, op: str) -> int:
        tok = self._expect("num", None, f"the number of rows after '{op}'")
        if not isinstance(tok.value, int):
            self._fail(tok, f"'{op}' takes a whole number of rows")
        return tok.value

    def _where(self) -> Step:
        start, pred = self._peek(), self._expr()
        if not self._at("op", "|") and not self._ended():  # a syntax error beats a type error
            self._fail(self._peek(), "expected '|' and an operator, or the end of the query")
        if pred.type not in ("boolean", "object"):
            self._fail(start, f"the 'where' predicate must be boolean, not {pred.type}",
                       "InvalidArgument")
        return lambda rows: [r for r in rows if pred.fn(r) is True]

    def _extend(self) -> Step:
        assigns: list[tuple[str, Callable[[Row], Any]]] = []
        while True:
            name = self._expect("word", None, "a column name ('extend name = expression')").text
            self._expect("op", "=", f"'=' after '{name}' ('extend name = expression')")
            expr = self._expr()
            self.schema[name] = expr.type  # later assignments in the same extend may use it
            assigns.append((name, expr.fn))
            if not self._at("op", ","):
                break
            self._next()

        def step(rows: list[Row]) -> list[Row]:
            out = []
            for row in rows:
                row = dict(row)
                for name, fn in assigns:
                    row[name] = fn(row)
                out.append(row)
            return out
        return step

    def _named(self, form: str) -> tuple[_Tok, str, _Expr]:
        """``name = expression``, or an expression that names itself (a column); ``form``
        shows the user how to name one that does not."""
        start = self._peek()
        if start.kind == "word" and self.toks[self.i + 1].text == "=":
            self.i += 2
            return start, start.text, self._expr()
        expr = self._expr()
        if expr.name is None:
            self._fail(start, f"name this expression: '{form}'")
        return start, expr.name, expr

    def _project(self) -> Step:
        cols: dict[str, Callable[[Row], Any]] = {}
        schema: dict[str, str] = {}
        while True:
            start, name, expr = self._named("project name = expression")
            if name in schema:
                self._fail(start, f"column '{name}' is projected twice", "InvalidArgument")
            cols[name], schema[name] = expr.fn, expr.type
            if not self._at("op", ","):
                break
            self._next()
        self.schema = schema  # project's expressions all see the input columns
        return lambda rows: [{name: fn(r) for name, fn in cols.items()} for r in rows]

    def _summarize(self) -> Step:
        aggregates: list[tuple[str, str, Callable[[Row], Any] | None]] = []
        schema: dict[str, str] = {}
        if not self._at("word", "by"):
            while True:
                name, function, fn, rtype = self._aggregate()
                if name in schema:
                    self._fail(self._peek(), f"column '{name}' is summarized twice",
                               "InvalidArgument")
                aggregates.append((name, function, fn))
                schema[name] = rtype
                if not self._at("op", ","):
                    break
                self._next()
        keys: list[tuple[str, Callable[[Row], Any]]] = []
        key_schema: dict[str, str] = {}
        if self._at("word", "by"):
            self._next()
            while True:
                start, name, expr = self._named("summarize ... by name = expression")
                if expr.type == "object":
                    self._fail(start, f"Summarize group key '{name}' is of a 'dynamic' type; "
                               "cast it, e.g. tostring()", "InvalidArgument")
                if name in key_schema or name in schema:
                    self._fail(start, f"column '{name}' is summarized twice", "InvalidArgument")
                keys.append((name, expr.fn))
                key_schema[name] = expr.type
                if not self._at("op", ","):
                    break
                self._next()
        if not aggregates and not keys:
            self._fail(self._peek(), "'summarize' needs an aggregate (count(), ...) or 'by'")
        self.schema = {**key_schema, **schema}

        def step(rows: list[Row]) -> list[Row]:
            groups: dict[str, tuple[tuple[Any, ...], list[Row]]] = {}
            if not keys:
                groups[""] = ((), rows)
            else:
                for row in rows:
                    values = tuple(fn(row) for _, fn in keys)
                    groups.setdefault(group_key(values), (values, []))[1].append(row)
            out = []
            for values, members in groups.values():
                result: Row = dict(zip((name for name, _ in keys), values, strict=True))
                for name, function, fn in aggregates:
                    args = [fn(r) if fn else None for r in members]
                    result[name] = AGGREGATES[function].compute(args)
                out.append(result)
            return out
        return step

    def _aggregate(self) -> tuple[str, str, Callable[[Row], Any] | None, str]:
        start = self._peek()
        name: str | None = None
        if start.kind == "word" and self.toks[self.i + 1].text == "=":
            self.i += 2
            name = start.text
        tok = self._expect("word", None, "an aggregate function (count(), countif(), dcount(), "
                           "sum(), min(), max())")
        function = tok.text
        if function not in AGGREGATES:
            self._fail(tok, f"Unknown aggregate function '{function}'; the sandbox's "
                       f"summarize supports: {', '.join(AGGREGATES)}", "UnknownFunction")
        aggregate = AGGREGATES[function]
        self._expect("op", "(", f"'(' after {function}")
        arg: _Expr | None = None
        if not self._at("op", ")"):
            arg = self._expr()
        self._expect("op", ")", f"')' after the argument of {function}()")
        if (arg is not None) != (aggregate.arity == 1):
            self._fail(tok, f"{function}() takes {aggregate.arity} argument(s)",
                       "InvalidArgument")
        name = name or default_name(function, arg.name if arg else None)
        if name is None:
            self._fail(tok, f"name this aggregate: 'summarize name = {function}(...)'")
        rtype = aggregate.result or (arg.type if arg else "integer")
        return name, function, arg.fn if arg else None, rtype

    def _column(self, tok: _Tok, name: str | None = None) -> str:
        name = tok.text if name is None else name
        if name not in self.schema:
            self._fail(tok, f"Failed to resolve column '{name}'; the columns at this point "
                       f"are: {', '.join(self.schema)}", "UnknownColumn")
        return name

    def _names(self, what: str) -> list[_Tok]:
        names = [self._expect("word", None, what)]
        while self._at("op", ","):
            self._next()
            names.append(self._expect("word", None, what))
        return names

    def _project_away(self) -> Step:
        away = {self._column(t) for t in self._names("a column name after 'project-away'")}
        self.schema = {c: t for c, t in self.schema.items() if c not in away}
        return lambda rows: [{c: v for c, v in r.items() if c not in away} for r in rows]

    def _rename(self) -> Step:
        renames: dict[str, str] = {}
        while True:
            new = self._expect("word", None, "'new = old' after 'project-rename'").text
            self._expect("op", "=", f"'=' after '{new}' ('project-rename new = old')")
            renames[self._column(self._expect("word", None, "the old column name"))] = new
            if not self._at("op", ","):
                break
            self._next()
        self.schema = {renames.get(c, c): t for c, t in self.schema.items()}
        return lambda rows: [{renames.get(c, c): v for c, v in r.items()} for r in rows]

    def _sort(self, limit: int | None) -> Step:
        keys: list[tuple[Callable[[Row], Any], bool]] = []
        while True:
            expr, desc, nulls_first = self._expr(), True, None  # Kusto sorts desc by default
            if self._at("word", "asc", "desc"):
                desc = self._next().text == "desc"
            if self._at("word", "nulls"):
                self._next()
                if not self._at("word", "first", "last"):
                    self._fail(self._peek(), "expected 'first' or 'last' after 'nulls'")
                nulls_first = self._next().text == "first"
            keys.append((self._sort_key(expr, desc, nulls_first), desc))
            if not self._at("op", ","):
                break
            self._next()

        def step(rows: list[Row]) -> list[Row]:
            rows = list(rows)
            for key, desc in reversed(keys):  # stable sorts, least significant key first
                rows.sort(key=key, reverse=desc)
            return rows if limit is None else rows[:limit]
        return step

    @staticmethod
    def _sort_key(expr: _Expr, desc: bool, nulls_first: bool | None) -> Callable[[Row], Any]:
        # Kusto's defaults: nulls first ascending, last descending. Rank 0 sorts first ascending.
        null_rank = 0 if (nulls_first is None or nulls_first != desc) else 2
        as_dt = expr.type == "datetime"

        def key(row: Row) -> tuple[Any, ...]:
            v = expr.fn(row)
            v = _parse_dt(v) if as_dt else v
            if v is None:
                return (null_rank,)
            rank = 0 if isinstance(v, bool) else 1 if _is_num(v) else 2 \
                if isinstance(v, str | datetime) else 3
            return (1, rank, _to_str(v) if rank == 3 else v)
        return key

    # -- expressions ----------------------------------------------------------------------------
    def _expr(self) -> _Expr:
        left = self._and_expr()
        while self._at("word", "or"):
            self._next()
            left = self._binary(left, self._and_expr(), _or)
        return left

    def _and_expr(self) -> _Expr:
        left = self._comparison()
        while self._at("word", "and"):
            self._next()
            left = self._binary(left, self._comparison(), _and)
        return left

    @staticmethod
    def _binary(a: _Expr, b: _Expr, fn: Callable[[Any, Any], Any]) -> _Expr:
        return _Expr(lambda r: fn(a.fn(r), b.fn(r)), "boolean")

    def _comparison(self) -> _Expr:
        left, tok = self._postfix(), self._peek()
        op = tok.text
        if tok.kind == "op" and op in ("==", "!="):
            self._next()
            return self._binary(left, self._postfix(), _compare_eq(op == "!="))
        if tok.kind == "op" and op in _ORDER_OPS:
            self._next()
            right = self._postfix()
            as_dt = "datetime" in (left.type, right.type)
            return self._binary(left, right, lambda a, b: _order(op, a, b, as_dt))
        if (tok.kind == "op" and op in ("=~", "!~")) or (tok.kind == "word" and op in _STR_OPS):
            self._next()
            return self._binary(left, self._postfix(), _string_test(op))
        if tok.kind == "word" and op in _IN_OPS:
            self._next()
            self._expect("op", "(", f"'(' and a list of values after '{op}'")
            items = [self._expr()]
            while self._at("op", ","):
                self._next()
                items.append(self._expr())
            self._expect("op", ")", f"',' or ')' in the '{op}' list")
            return _in_list(op, left, items)
        if tok.kind == "op" and op == "=":
            self._fail(tok, "'=' only names a column (extend, project); compare with '==' or '=~'")
        if tok.kind == "word" and (op.endswith("~") or op.startswith("!")):
            self._fail(tok, "unknown operator; the sandbox supports == != < <= > >= =~ !~ "
                       "in in~ !in !in~ contains has startswith endswith (with ! and _cs)")
        return left

    def _postfix(self) -> _Expr:
        expr = self._atom()
        while self._at("op", ".", "["):
            tok = self._next()
            if expr.type != "object":
                self._fail(tok, f"'{tok.text}' needs a dynamic (object) value, not {expr.type}",
                           "InvalidArgument")
            if tok.text == ".":
                member = self._expect("word", None, "a property name after '.'").text
                expr = _member(expr, _Expr(_const(member), "string"),
                               f"{expr.name}_{member}" if expr.name else None)
            else:
                expr = _member(expr, self._expr(), None)
                self._expect("op", "]", "']'")
        return expr

    def _atom(self) -> _Expr:
        tok = self._next()
        if tok.kind == "str":
            return _Expr(_const(tok.value), "string")
        if tok.kind == "num" or (tok.text == "-" and self._at("num")):
            value = tok.value if tok.kind == "num" else -self._next().value
            return _Expr(_const(value), "integer" if isinstance(value, int) else "number")
        if tok.text == "(":
            inner = self._expr()
            self._expect("op", ")", "')'")
            return inner
        if tok.text == "[" and self._at("str"):
            quoted = self._next()
            name = self._column(quoted, quoted.value)
            self._expect("op", "]", "']' after the quoted column name")
            return _Expr(lambda r: r[name], self.schema[name], name)
        if tok.kind != "word":
            self._fail(tok, "expected an expression")
        if tok.text in ("true", "false"):
            return _Expr(_const(tok.text == "true"), "boolean")
        if tok.text == "null":
            return _Expr(_const(None), "object")
        if self._at("op", "("):
            return self._call(tok)
        if tok.text in ("not", "and", "or"):
            self._fail(tok, f"'{tok.text}' needs an expression; 'not' is a function: not(expr)")
        name = self._column(tok)
        return _Expr(lambda r: r[name], self.schema[name], name)

    def _call(self, tok: _Tok) -> _Expr:
        if tok.text not in _FUNCS:
            self._fail(tok, f"Unknown function '{tok.text}'; the sandbox supports: "
                       f"{', '.join(sorted(_FUNCS))}", "UnknownFunction")
        low, high, rtype, impl = _FUNCS[tok.text]
        self._next()
        args: list[_Expr] = []
        if not self._at("op", ")"):
            args.append(self._expr())
            while self._at("op", ","):
                self._next()
                args.append(self._expr())
        self._expect("op", ")", f"',' or ')' in the arguments of {tok.text}()")
        if not low <= len(args) <= high:
            count = str(low) if low == high else f"{low} to {high}"
            self._fail(tok, f"{tok.text}() takes {count} arguments, got {len(args)}",
                       "InvalidArgument")
        fns = [a.fn for a in args]
        return _Expr(lambda r: impl(*(f(r) for f in fns)),
                     rtype if isinstance(rtype, str) else args[rtype].type)
