"""Kubernetes name and label-selector syntax: the one place every boundary validates against."""

from __future__ import annotations

import re

# A namespace (and a container name) is a DNS label; most objects are DNS subdomains.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
OBJECT_NAME = r"^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$"
NAMESPACE_RE = re.compile(DNS_LABEL)
OBJECT_NAME_RE = re.compile(OBJECT_NAME)

_KEY = r"(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?"
_TERM = re.compile(
    rf"^(?:!?\s*{_KEY}"
    rf"|{_KEY}\s*(?:==|=|!=)\s*{_VALUE}"
    rf"|{_KEY}\s+(?:in|notin)\s*\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\))$"
)


def _terms(selector: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c` has two terms)."""
    terms, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term.strip() for term in terms]


def label_selector_problem(selector: str) -> str | None:
    """Why `selector` is not a valid Kubernetes label selector, or None when it is (empty is valid)."""
    if not isinstance(selector, str):
        return "a label selector must be a string such as 'app=web,role=canary'"
    if not selector.strip():
        return None
    for term in _terms(selector):
        if not term or not _TERM.match(term):
            return (f"{term!r} is not a label selector term: use key=value, key!=value, key in (a,b), "
                    "key notin (a,b), key or !key, separated by commas")
    return None
