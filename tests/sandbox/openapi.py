"""Test support: the vendored Azure Swagger 2.0 specs (``tests/specs``): schemas, examples.

``SpecIndex`` loads the spec files, finds operations by ``operationId``, validates response and
request bodies against their schemas (``jsonschema`` Draft 4, which Swagger 2.0 schemas are based
on; ``x-ms-*``, ``readOnly`` and ``discriminator`` are unknown keywords to Draft 4 and so ignored,
``format`` is not checked) and loads the request/response examples. ``shape_mismatches`` and
``extra_keys`` compare a response body with an example's. See ``tests/specs/README.md`` for the
layout, the upstream source and the licence.

A ``$ref`` into a file that was not vendored (the shared ``v1/privatelinks.json`` or
``v6/types.json`` that some of ``storage.json``'s operations take parameters from) is an error
only when something uses it: a schema that reaches it, or an operation parameter that is looked
at (``Operation.unresolved`` lists those).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urldefrag, urljoin

from jsonschema import Draft4Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT4

# Inside the repository, so a fresh clone runs these tests on its own.
SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
SPEC_FILES = (
    "compute/ComputeRP/stable/2025-04-01/runCommand.json",
    "compute/ComputeRP/stable/2025-04-01/computeRPCommon.json",
    "compute/common-types/v1/common.json",
    "hybridcompute/stable/2025-01-13/HybridCompute.json",
    "common-types/resource-management/v1/types.json",
    "common-types/resource-management/v3/types.json",
    "common-types/resource-management/v5/types.json",
    "resourcegraph/stable/2024-04-01/resourcegraph.json",
    "storage/stable/2025-06-01/blob.json",
    "storage/stable/2025-06-01/common.json",
    "storage/stable/2025-06-01/storage.json",
    "storage/stable/2025-06-01/privatelinks.json",
)
_BASE = "https://specs.invalid/"  # stands for SPECS_DIR in the schemas' $ref URIs
# HybridCompute.json reaches the shared types five levels up (upstream layout); the README puts
# them at specs/common-types/ instead.
_COMMON_PREFIX = "../../../../../common-types/"
# The 2026-09-01 Arc examples came without their spec (openapi.json was not copied). Their
# run-command operations are the 2025-01-13 ones, so they map by file name to the examples of the
# same name in the 2025-01-13 folder and take those operationIds (RunCommands_Get.json ->
# MachineRunCommands_Get, ...).
_ARC_2026 = ("hybridcompute/HybridCompute/stable/2026-09-01", "hybridcompute/stable/2025-01-13")
_NO_SCHEMA = "virtualMachine.json was not copied (see specs/README.md)"


class SpecError(Exception):
    """The vendored specs cannot answer: unknown operation, unresolvable $ref, missing schema."""


@dataclass(frozen=True)
class Operation:
    operation_id: str
    spec_file: Path | None  # None: hand-written stand-in for an operation whose spec is missing
    path: str  # template, e.g. /subscriptions/{subscriptionId}/...
    method: str  # lower case
    parameters: tuple[dict[str, Any], ...]  # with parameter $refs resolved
    responses: dict[str, dict[str, Any]]  # status ("200", "default") -> Swagger response object
    unavailable: str | None = None  # why the schemas are missing
    unresolved: tuple[str, ...] = ()
    """$refs of parameters whose file was not vendored, left out of ``parameters``: their names
    and places are unknown here. ``request_path`` fills the path from the template, so only a
    query or body parameter among them would go unnoticed; storage.json's are the shared
    PrivateEndpointConnectionName and the v6 ApiVersionParameter and SubscriptionIdParameter,
    on operations the sandbox does not serve."""

    @property
    def body_parameter(self) -> dict[str, Any] | None:
        return next((p for p in self.parameters if p["in"] == "body"), None)


# VirtualMachines_InstanceView is defined in virtualMachine.json, which was not copied. Its route
# (GET .../virtualMachines/{vmName}/instanceView) lets the instance-view example replay anyway.
_INSTANCE_VIEW = Operation(
    "VirtualMachines_InstanceView", None,
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/"
    "Microsoft.Compute/virtualMachines/{vmName}/instanceView", "get",
    tuple({"name": name, "in": where, "required": True, "type": "string"} for name, where in (
        ("subscriptionId", "path"), ("resourceGroupName", "path"), ("vmName", "path"),
        ("api-version", "query"))),
    {}, _NO_SCHEMA)
STORAGE_EXAMPLES = "storage/stable/2025-06-01/examples/"
_UNSPECCED_EXAMPLES = {
    "compute/ComputeRP/stable/2025-04-01/examples/virtualMachineExamples/"
    "VirtualMachine_Get_InstanceView.json": _INSTANCE_VIEW,
}


@dataclass(frozen=True)
class Example:
    path: Path
    name: str  # path below the specs folder
    operation_id: str
    parameters: dict[str, Any]  # as in the file: path/query values and the body under its name
    request_body: Any  # the body parameter's value, None if the operation has none
    responses: dict[int, dict[str, Any]]  # status -> {"headers": {...}, "body": ... or None}


def _prepare(node: Any, base: str) -> Any:
    """Make every $ref an absolute URI and turn ``x-nullable: true`` into "or null"."""
    if isinstance(node, list):
        return [_prepare(item, base) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _prepare(value, base) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str):
        out["$ref"] = (_BASE + "common-types/" + ref.removeprefix(_COMMON_PREFIX)
                       if ref.startswith(_COMMON_PREFIX) else urljoin(base, ref))
    if out.pop("x-nullable", False) is True:
        return {"anyOf": [{"type": "null"}, out]}
    return out


def _format_errors(errors: Iterator[ValidationError]) -> list[str]:
    lines = []
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        # anyOf from x-nullable: report why the non-null branch failed, not just "not valid".
        context = [e for e in error.context or () if e.validator_value != "null"]
        lines += _format_errors(iter(context)) if context else [
            f"{error.json_path}: {error.message}"]
    return lines


def _raise(what: str, errors: list[str]) -> None:
    if errors:
        raise AssertionError(f"{what} does not match the spec:\n  " + "\n  ".join(errors))


class SpecIndex:
    def __init__(self, specs_dir: Path = SPECS_DIR) -> None:
        self.specs_dir = specs_dir
        self.docs: dict[str, Any] = {}
        self.operations: dict[str, Operation] = {
            op.operation_id: op for op in _UNSPECCED_EXAMPLES.values()}
        self._example_ops: dict[Path, str] = {}
        for rel in SPEC_FILES:
            doc = json.loads((specs_dir / rel).read_text())
            self.docs[_BASE + rel] = _prepare(doc, _BASE + rel)
        self.registry: Registry[Any] = Registry().with_resources(
            (uri, DRAFT4.create_resource(doc)) for uri, doc in self.docs.items())
        for rel in SPEC_FILES:
            for template, item in self.docs[_BASE + rel].get("paths", {}).items():
                for method, op in item.items():
                    if method != "parameters":
                        self._add_operation(specs_dir / rel, template, method, op)

    def _add_operation(self, spec: Path, template: str, method: str, op: dict[str, Any]) -> None:
        oid = op["operationId"]
        params, unresolved = [], []
        for parameter in op["parameters"]:
            ref = parameter.get("$ref")
            if ref is not None and not self.vendored(ref):
                unresolved.append(self._rel(ref))
            else:
                params.append(self.resolve(ref) if ref is not None else parameter)
        self.operations[oid] = Operation(oid, spec, template, method, tuple(params),
                                         op["responses"], unresolved=tuple(unresolved))
        for ref in op.get("x-ms-examples", {}).values():
            self._example_ops[(self.specs_dir / self._rel(ref["$ref"])).resolve()] = oid

    def _rel(self, uri: str) -> str:
        return uri.removeprefix(_BASE)

    def vendored(self, ref: str) -> bool:
        """Whether ``ref``'s file is among the loaded spec files (its fragment unchecked)."""
        return urldefrag(urljoin(_BASE, ref))[0] in self.docs

    def resolve(self, ref: str) -> Any:
        """The target of ``ref`` (absolute, or relative to the specs folder), $refs inside kept."""
        uri, fragment = urldefrag(urljoin(_BASE, ref))
        if uri not in self.docs:
            raise SpecError(f"unresolvable $ref {self._rel(ref)!r}: "
                            f"{self._rel(uri)} is not among the vendored spec files")
        node = self.docs[uri]
        for part in filter(None, fragment.split("/")):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise SpecError(f"unresolvable $ref {self._rel(ref)!r}: no {part!r} there")
            node = node[part]
        return node

    def schema(self, node: dict[str, Any] | str) -> dict[str, Any]:
        """A schema (or a $ref to one) with top-level $refs followed, after checking that every
        $ref it reaches, transitively, resolves (raises SpecError naming the first that doesn't)."""
        while isinstance(node, str) or "$ref" in node:
            node = self.resolve(node if isinstance(node, str) else node["$ref"])
        seen: set[str] = set()
        todo: list[Any] = [node]
        while todo:
            item = todo.pop()
            if isinstance(item, list):
                todo += item
            elif isinstance(item, dict):
                todo += item.values()
                target = item.get("$ref")
                if isinstance(target, str) and target not in seen:
                    seen.add(target)
                    todo.append(self.resolve(target))
        return node

    def operation(self, operation_id: str) -> Operation:
        if operation_id not in self.operations:
            raise SpecError(f"no operation {operation_id!r} in the vendored specs")
        return self.operations[operation_id]

    def _specced(self, operation_id: str) -> Operation:
        op = self.operation(operation_id)
        if op.unavailable:
            raise SpecError(f"no schema available for {operation_id}: {op.unavailable}")
        return op

    def response_schema(self, operation_id: str, status: int | str) -> dict[str, Any] | None:
        """The body schema of ``status`` (``default`` serves an undeclared 4xx/5xx); None if the
        status has no body; AssertionError if it is not declared."""
        responses = self._specced(operation_id).responses
        response = responses.get(str(status)) or (
            responses.get("default") if int(status) >= 400 else None)
        if response is None:
            raise AssertionError(f"status {status}: not declared by {operation_id} "
                                 f"(declares {', '.join(responses)})")
        return self.schema(response["schema"]) if "schema" in response else None

    def request_schema(self, operation_id: str) -> dict[str, Any] | None:
        body = self._specced(operation_id).body_parameter
        return None if body is None else self.schema(body["schema"])

    def errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        """Each way ``instance`` breaks ``schema``, as '<JSON path>: <message>'."""
        return _format_errors(Draft4Validator(schema, registry=self.registry).iter_errors(instance))

    def response_errors(self, operation_id: str, status: int | str, body: Any) -> list[str]:
        """Schema errors of a response (an undeclared status, or a body where none is, too)."""
        try:
            schema = self.response_schema(operation_id, status)
        except AssertionError as undeclared:
            return [str(undeclared)]
        return self._errors(schema, body)

    def request_errors(self, operation_id: str, body: Any) -> list[str]:
        return self._errors(self.request_schema(operation_id), body)

    def _errors(self, schema: dict[str, Any] | None, body: Any) -> list[str]:
        if schema is None:
            return [] if body in (None, "", b"") else [f"$: no body declared, got {body!r:.200}"]
        return self.errors(schema, body)

    def validate_response(self, operation_id: str, status: int | str, body: Any) -> None:
        """Raise AssertionError listing ``response_errors``, one per line."""
        errors = self.response_errors(operation_id, status, body)
        _raise(f"{operation_id} {status} response", errors)

    def validate_request(self, operation_id: str, body: Any) -> None:
        _raise(f"{operation_id} request body", self.request_errors(operation_id, body))

    def request_path(self, example: Example) -> str:
        """The example's URL path and query, from the operation's declared parameters only."""
        op = self.operation(example.operation_id)
        values = example.parameters
        path = re.sub(r"\{([^}]+)\}", lambda m: quote(str(values[m[1]]), safe=""), op.path)
        query = [f"{quote(p['name'])}={quote(str(values[p['name']]), safe='')}"
                 for p in op.parameters if p["in"] == "query" and p["name"] in values]
        return path + ("?" + "&".join(query) if query else "")

    def operation_of_example(self, path: Path) -> str:
        rel = path.relative_to(self.specs_dir).as_posix()
        if rel in _UNSPECCED_EXAMPLES:
            return _UNSPECCED_EXAMPLES[rel].operation_id
        old, new = _ARC_2026
        if rel.startswith(old + "/"):
            path = self.specs_dir / new / rel.removeprefix(old + "/")
        if path.resolve() not in self._example_ops:
            raise SpecError(f"example {rel} is named by no x-ms-examples in the vendored specs")
        return self._example_ops[path.resolve()]

    def load_examples(self) -> Iterator[Example]:
        for path in sorted(self.specs_dir.rglob("examples/**/*.json")):
            data = json.loads(path.read_text())
            oid = self.operation_of_example(path)
            if data.get("operationId", oid) != oid:
                raise SpecError(f"{path}: says operationId {data['operationId']}, mapped to {oid}")
            body, params = self.operation(oid).body_parameter, data["parameters"]
            yield Example(path, path.relative_to(self.specs_dir).as_posix(), oid, params,
                          params.get(body["name"]) if body else None,
                          {int(status): {"headers": r.get("headers", {}), "body": r.get("body")}
                           for status, r in data["responses"].items()})


@cache
def spec_index() -> SpecIndex:
    """One shared, loaded index (loading parses about 1 MB of JSON)."""
    return SpecIndex()


_KINDS = {type(None): "null", bool: "bool", int: "number", float: "number", str: "string",
          list: "array", dict: "object"}


def _kind(value: Any) -> str:
    return _KINDS[type(value)]


def _generic(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def shape_mismatches(expected: Any, actual: Any, *, path: str = "",
                     ignore: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Where ``actual`` lacks a key of ``expected`` or holds a different kind of JSON value.

    Recursive; null in ``expected`` matches anything; each item of an actual array is compared
    with the first expected item; extra keys in ``actual`` are fine (see ``extra_keys``). Paths
    look like ``value[0].properties.source``; ``ignore`` holds paths to skip, with ``[]`` for any
    index (``value[].properties.instanceView``).
    """
    where = path or "<root>"
    if expected is None or _generic(path) in ignore:
        return []
    if _kind(expected) != _kind(actual):
        return [f"{where}: expected {_kind(expected)}, got {_kind(actual)} {actual!r:.80}"]
    problems: list[str] = []
    if isinstance(expected, dict):
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                if _generic(sub) not in ignore:
                    problems.append(f"{sub}: missing")
            else:
                problems += shape_mismatches(value, actual[key], path=sub, ignore=ignore)
    elif isinstance(expected, list) and expected:
        for i, item in enumerate(actual):
            problems += shape_mismatches(expected[0], item, path=f"{path}[{i}]", ignore=ignore)
    return problems


def extra_keys(expected: Any, actual: Any, *, path: str = "") -> list[str]:
    """Paths (``[]`` for any index) of keys in ``actual`` that ``expected`` does not have."""
    found: set[str] = set()
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in actual.items():
            sub = f"{path}.{key}" if path else key
            if key in expected:
                found.update(extra_keys(expected[key], value, path=sub))
            else:
                found.add(sub)
    elif isinstance(expected, list) and expected and isinstance(actual, list):
        for item in actual:
            found.update(extra_keys(expected[0], item, path=f"{path}[]"))
    return sorted(found)
