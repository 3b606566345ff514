"""OData query options as Graph implements them for directory objects: ``$select``, ``$top``
and the ``$filter`` subset the service relies on.

``$filter`` supports ``eq`` (strings in single quotes with ``''`` escaping, ``true``, ``false``,
``null``), ``in (...)``, ``startswith(property, 'prefix')``, ``and``, ``or`` and parentheses,
on the properties Graph marks filterable (learn.microsoft.com/graph/filter-query-parameter).
Comparison is case-insensitive for strings, as in the directory. Equality and ``in`` on an
indexed property (id, userPrincipalName, mail, employeeId, group displayName) are answered from
the index; everything else is checked on the candidates, or on the tenant when no clause is indexed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from provisioner.sandbox.graph.errors import (
    ODATA_BAD_REQUEST,
    UNSUPPORTED_QUERY,
    GraphError,
    bad_request,
)
from provisioner.sandbox.graph.messages import GraphResponse, JsonObject
from provisioner.sandbox.graph.schema import EntityType

Lookup = Callable[[str, Any], Collection[str] | None]

METADATA = "https://graph.microsoft.com/v1.0/$metadata#"
MAX_PAGE_SIZE = 999  # Graph's $top ceiling for directory collections


def context_url(fragment: str) -> str:
    """The ``@odata.context`` value Graph returns, e.g. ``...$metadata#users(displayName)``."""
    return METADATA + fragment


def select_fragment(entity_set: str, select: Sequence[str] | None) -> str:
    """The context fragment of a collection, with the selected properties Graph lists there."""
    return f"{entity_set}({','.join(select)})" if select else entity_set


def collection_response(fragment: str, value: list[JsonObject], next_link: str | None) -> GraphResponse:
    """200 with a collection page: ``@odata.context``, ``value`` and, when more remain,
    ``@odata.nextLink``.
    """
    body: JsonObject = {"@odata.context": context_url(fragment), "value": value}
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return GraphResponse(200, body)


def require_object(body: Any) -> JsonObject:
    """The JSON object a POST / PATCH / PUT needs as its body."""
    if not isinstance(body, dict):
        raise GraphError(400, ODATA_BAD_REQUEST, "Empty Payload. JSON content expected.")
    return body


_REFERENCE = re.compile(r"(?:^|/)(?:directoryObjects|users|groups)/([^/?#]+)/?$")


def reference_id(url: Any) -> str:
    """The object id in an ``@odata.id`` / ``@odata.bind`` reference
    (``https://graph.microsoft.com/v1.0/directoryObjects/{id}``; any host is accepted).
    """
    match = _REFERENCE.search(url) if isinstance(url, str) else None
    if match is None:
        raise bad_request(f"Invalid object identifier '{url}'.")
    return match.group(1)


def check_options(query: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Refuse system query options the sandbox doesn't implement for this request.

    Graph would honour some of them ($orderby, $count...); failing loudly keeps the service from
    depending on behaviour the sandbox can't check.
    """
    allowed_set = set(allowed)
    for name in query:
        if name.startswith("$") and name not in allowed_set:
            raise GraphError(
                400,
                UNSUPPORTED_QUERY,
                f"The query option '{name}' isn't supported by the Graph sandbox here.",
            )


def parse_select(
    query: Mapping[str, str], entity: EntityType, *, extra: Iterable[str] = ()
) -> tuple[str, ...] | None:
    """The properties named in ``$select`` (None when absent), each checked against the type."""
    raw = query.get("$select")
    if raw is None:
        return None
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    known = entity.readable.union(extra)
    for name in names:
        if name not in known:
            raise GraphError(
                400,
                ODATA_BAD_REQUEST,
                f"Could not find a property named '{name}' on type '{entity.odata_type.lstrip('#')}'.",
            )
    return names


def parse_top(query: Mapping[str, str], default: int) -> int:
    """The page size: ``$top`` (1-999, as Graph allows for directory objects) or ``default``."""
    raw = query.get("$top")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise bad_request(
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive."
        )
    return int(raw)


def project(
    obj: JsonObject, select: Sequence[str] | None, entity: EntityType, *, typed: bool = False
) -> JsonObject:
    """``obj`` reduced to the selected properties, or to Graph's default set without ``$select``.

    ``typed`` adds ``@odata.type``, as Graph does in collections of directoryObject
    (members, memberOf).
    """
    names = entity.default_select if select is None else select
    shaped = {name: obj.get(name) for name in names}
    if typed:
        return {"@odata.type": entity.odata_type, **shaped}
    return shaped


# ---- $filter ---------------------------------------------------------------------------------


class Predicate(Protocol):
    def matches(self, obj: JsonObject) -> bool: ...

    def candidates(self, lookup: Lookup) -> Collection[str] | None:
        """Ids that may match, from indexes; None when the clause can't use one."""
        ...


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.casefold() == expected.casefold()
    return actual == expected and type(actual) is type(expected)


@dataclass(frozen=True, slots=True)
class Equals:
    prop: str
    value: Any

    def matches(self, obj: JsonObject) -> bool:
        return _same(obj.get(self.prop), self.value)

    def candidates(self, lookup: Lookup) -> Collection[str] | None:
        return lookup(self.prop, self.value)


@dataclass(frozen=True, slots=True)
class In:
    prop: str
    values: tuple[Any, ...]

    def matches(self, obj: JsonObject) -> bool:
        actual = obj.get(self.prop)
        return any(_same(actual, value) for value in self.values)

    def candidates(self, lookup: Lookup) -> Collection[str] | None:
        found: set[str] = set()
        for value in self.values:
            ids = lookup(self.prop, value)
            if ids is None:
                return None
            found.update(ids)
        return found


@dataclass(frozen=True, slots=True)
class StartsWith:
    prop: str
    prefix: str

    def matches(self, obj: JsonObject) -> bool:
        actual = obj.get(self.prop)
        return isinstance(actual, str) and actual.casefold().startswith(self.prefix.casefold())

    def candidates(self, lookup: Lookup) -> Collection[str] | None:
        return None


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Predicate, ...]

    def matches(self, obj: JsonObject) -> bool:
        return all(item.matches(obj) for item in self.items)

    def candidates(self, lookup: Lookup) -> Collection[str] | None:
        options = [ids for ids in (item.candidates(lookup) for item in self.items) if ids is not None]
        return min(options, key=len) if options else None


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Predicate, ...]

    def matches(self, obj: JsonObject) -> bool:
        return any(item.matches(obj) for item in self.items)

    def candidates(self, lookup: Lookup) -> Collection[str] | None:
        found: set[str] = set()
        for item in self.items:
            ids = item.candidates(lookup)
            if ids is None:
                return None
            found.update(ids)
        return found


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*))"
)
_KEYWORDS = {"true": True, "false": False, "null": None}


class _FilterParser:
    """Recursive descent over ``or`` / ``and`` / primary clauses."""

    def __init__(self, text: str, entity: EntityType) -> None:
        self._entity = entity
        self._tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise self._invalid(text)
            kind = match.lastgroup or ""
            self._tokens.append((kind, match.group(kind)))
            position = match.end()
        self._text = text
        self._index = 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self._index != len(self._tokens):
            raise self._invalid(self._text)
        return predicate

    def _or(self) -> Predicate:
        items = [self._and()]
        while self._accept_word("or"):
            items.append(self._and())
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def _and(self) -> Predicate:
        items = [self._primary()]
        while self._accept_word("and"):
            items.append(self._primary())
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def _primary(self) -> Predicate:
        if self._accept_punct("("):
            inner = self._or()
            self._expect_punct(")")
            return inner
        word = self._expect("word")
        if word == "startswith":
            self._expect_punct("(")
            prop = self._property(self._expect("word"))
            self._expect_punct(",")
            prefix = self._literal()
            self._expect_punct(")")
            if not isinstance(prefix, str):
                raise self._invalid(self._text)
            return StartsWith(prop, prefix)
        prop = self._property(word)
        operator = self._expect("word")
        if operator == "eq":
            return Equals(prop, self._literal())
        if operator == "in":
            self._expect_punct("(")
            values = [self._literal()]
            while self._accept_punct(","):
                values.append(self._literal())
            self._expect_punct(")")
            return In(prop, tuple(values))
        raise GraphError(
            400, UNSUPPORTED_QUERY, f"Unsupported query operator '{operator}' in the Graph sandbox."
        )

    def _property(self, name: str) -> str:
        if name not in self._entity.filterable:
            raise GraphError(
                400,
                UNSUPPORTED_QUERY,
                f"Unsupported or invalid query filter clause specified for property '{name}' "
                f"of resource '{self._entity.resource}'.",
            )
        return name

    def _literal(self) -> Any:
        kind, value = self._next()
        if kind == "string":
            return value[1:-1].replace("''", "'")
        if kind == "word" and value in _KEYWORDS:
            return _KEYWORDS[value]
        if kind == "number":
            return float(value) if "." in value else int(value)
        raise self._invalid(self._text)

    def _next(self) -> tuple[str, str]:
        if self._index >= len(self._tokens):
            raise self._invalid(self._text)
        token = self._tokens[self._index]
        self._index += 1
        return token

    def _expect(self, kind: str) -> str:
        actual_kind, value = self._next()
        if actual_kind != kind:
            raise self._invalid(self._text)
        return value

    def _expect_punct(self, punct: str) -> None:
        if self._expect("punct") != punct:
            raise self._invalid(self._text)

    def _accept_punct(self, punct: str) -> bool:
        if self._index < len(self._tokens) and self._tokens[self._index] == ("punct", punct):
            self._index += 1
            return True
        return False

    def _accept_word(self, word: str) -> bool:
        if self._index < len(self._tokens) and self._tokens[self._index] == ("word", word):
            self._index += 1
            return True
        return False

    @staticmethod
    def _invalid(text: str) -> GraphError:
        return GraphError(400, ODATA_BAD_REQUEST, f"Invalid filter clause: {text}")


def parse_filter(query: Mapping[str, str], entity: EntityType) -> Predicate | None:
    """The ``$filter`` of ``query`` as a predicate (None when absent)."""
    raw = query.get("$filter")
    if raw is None:
        return None
    return _FilterParser(raw, entity).parse()


MAX_OR_CLAUSES = 15  # ``in`` values and ``or``-ed clauses of one filter on a directory collection


def check_or_clauses(predicate: Predicate | None) -> None:
    """Graph refuses a collection filter with more than 15 ``or``-ed clauses or ``in`` values
    (learn.microsoft.com/graph/filter-query-parameter; known issues: "limited to 15 expressions")."""

    def count(p: Predicate) -> int:
        if isinstance(p, In):
            return len(p.values)
        if isinstance(p, AnyOf):
            return sum(count(item) for item in p.items)
        if isinstance(p, AllOf):
            return max(count(item) for item in p.items)
        return 1

    clauses = count(predicate) if predicate is not None else 0
    if clauses > MAX_OR_CLAUSES:
        raise GraphError(400, UNSUPPORTED_QUERY,
                         "Too many child clauses specified in search filter expression containing 'OR' "
                         f"operators: {clauses}. Max allowed: {MAX_OR_CLAUSES}.")


def matching_ids(objects: Mapping[str, JsonObject], predicate: Predicate | None, lookup: Lookup) -> list[str]:
    """Ids of ``objects`` matching ``predicate``: indexed candidates first, a scan otherwise.

    A scan keeps the store's (creation) order; indexed answers are ordered by id.
    """
    if predicate is None:
        return list(objects)
    candidates = predicate.candidates(lookup)
    if candidates is None:
        return [object_id for object_id, obj in objects.items() if predicate.matches(obj)]
    return sorted(
        object_id
        for object_id in candidates
        if object_id in objects and predicate.matches(objects[object_id])
    )
