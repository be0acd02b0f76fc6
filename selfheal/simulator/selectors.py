"""Label and field selectors with the grammar and error messages of the Kubernetes API.

Errors raise `SelectorError`; the API server turns them into a 400 BadRequest Status whose
message reads like the real apiserver's, so clients see the failures they would in a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

_SPECIAL = "!=(),<>"
_OPERATORS = {"!": "!", "=": "=", "==": "==", "!=": "!=", "(": "(", ")": ")", ",": ",", ">": ">", "<": "<"}
_KEYWORDS = {"in", "notin"}
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(_NAME)
_LABEL_VALUE = re.compile(rf"({_NAME})?")


class SelectorError(ValueError):
    """A selector string that the real apiserver would reject; the message is the reason."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # one of: exists, !, =, ==, !=, in, notin, >, <
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "==", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        # `>` and `<` compare integers; a missing or non-integer label never matches.
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.operator == ">" else number < bound


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); kind is `id`, `in`, `notin`, an operator, `end` or `error`."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            tokens.append(("end", ""))
            return tokens
        if text[i] in _SPECIAL:
            # Longest run of special characters that still forms an operator.
            j, best = i, None
            while j < n and text[j] in _SPECIAL:
                j += 1
                if text[i:j] in _OPERATORS:
                    best = j
                elif best is not None:
                    break
            if best is None:
                tokens.append(("error", f"error expected: keyword found '{text[i:j]}'"))
                i = j
            else:
                tokens.append((text[i:best], text[i:best]))
                i = best
            continue
        j = i
        while j < n and text[j] not in _SPECIAL and text[j] not in " \t":
            j += 1
        word = text[i:j]
        tokens.append((word if word in _KEYWORDS else "id", word))
        i = j


def _validate_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        problems.append("prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        problems.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                        "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                        "or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?"
                        "[A-Za-z0-9]')")
    if problems:
        raise SelectorError(f'key: Invalid value: "{key}": ' + ", ".join(problems))


def _validate_value(key: str, index: int, value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise SelectorError(
            f'values[{index}][{key}]: Invalid value: "{value}": a valid label must be an empty string '
            "or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
            "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        kind, literal = self.tokens[self.pos]
        # In value position the keywords are ordinary words (`x in (in)`).
        return ("id" if kind in _KEYWORDS else kind), literal

    def take(self, keywords: bool = False) -> tuple[str, str]:
        kind, literal = self.tokens[self.pos]
        self.pos += 1
        if not keywords and kind in _KEYWORDS:
            kind = "id"
        return kind, literal

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == "end":
                return requirements
            if kind not in ("id", "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, literal = self.take()
            if kind == "end":
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind not in ("id", "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = False
        kind, key = self.take()
        if kind == "!":
            negated = True
            kind, key = self.take()
        if kind != "id":
            raise SelectorError(f"found '{key}', expected: identifier")
        _validate_key(key)
        if self.peek()[0] in ("end", ","):
            return Requirement(key, "!" if negated else "exists")
        if negated:
            # `!key` takes no operator; the real parser fails on the operator that follows.
            kind, literal = self.take(keywords=True)
            raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
        kind, literal = self.take(keywords=True)
        if kind in ("in", "notin"):
            values = self.value_set()
        elif kind in ("=", "==", "!=", ">", "<"):
            values = self.exact_value()
        else:
            raise SelectorError(f"found '{literal}', expected: '=', '!=', '==', 'in', notin'")
        if kind in (">", "<"):
            if len(values) != 1 or not re.fullmatch(r"-?\d+", values[0]):
                raise SelectorError(f"for '{kind}' operator, the value must be an integer")
        else:
            for index, value in enumerate(values):
                _validate_value(key, index, value)
        return Requirement(key, kind, values)

    def value_set(self) -> tuple[str, ...]:
        kind, literal = self.take()
        if kind != "(":
            raise SelectorError(f"found '{literal}' expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            kind, literal = self.take()
            if kind == ")":
                if expect_value and values:
                    values.append("")  # `(a,)` holds the empty value
                return tuple(dict.fromkeys(values or [""]))
            if kind == "," :
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if kind == "id" and expect_value:
                values.append(literal)
                expect_value = False
                continue
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")

    def exact_value(self) -> tuple[str, ...]:
        kind, literal = self.peek()
        if kind in ("end", ","):
            return ("",)
        kind, literal = self.take()
        if kind != "id":
            raise SelectorError(f"found '{literal}', expected: identifier")
        return (literal,)


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse `role=canary,tier in (web,api),!legacy`; the empty selector matches everything."""
    if not text or not text.strip():
        return []
    return _LabelParser(text).parse()


def labels_match(requirements: list[Requirement], labels: dict[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels) for req in requirements)


# --- field selectors ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldTerm:
    path: str
    negated: bool
    value: str


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i:i + 2])
            i += 2
            continue
        if char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: {value}")
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def _find_operator(term: str) -> tuple[int, str] | None:
    """Leftmost unescaped `!=`, `==` or `=` in a term (the real parser's order)."""
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return i, op
        i += 1
    return None


def parse_field_selector(text: str | None) -> list[FieldTerm]:
    """Parse `involvedObject.name=x,status.phase!=Running` (any dotted path is accepted)."""
    if not text or not text.strip():
        return []
    terms = []
    for part in _split_unescaped(text, ","):
        found = _find_operator(part)
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        index, op = found
        path = part[:index].strip()
        if not path:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        terms.append(FieldTerm(path, op == "!=", _unescape(part[index + len(op):])))
    return terms


def field_value(obj: Any, path: str) -> str:
    """The value at a dotted path as the apiserver compares it: missing is the empty string."""
    node = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return ""
        node = node[part]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (dict, list)):
        return ""
    return str(node)


def fields_match(terms: list[FieldTerm], obj: Any, getter: Callable[[Any, str], str] = field_value) -> bool:
    return all((getter(obj, term.path) == term.value) != term.negated for term in terms)
