"""Runtime fault injection: matching requests get an error Status and/or a delay.

Tests use it to drive the product's error paths (RBAC 403, 5xx, slow API) against an
otherwise healthy simulated cluster.
"""

from __future__ import annotations

import re
import threading

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Fault(BaseModel):
    model_config = ConfigDict(frozen=True)

    path_regex: str = Field(description="re.search()ed against the request path plus '?query'.")
    status: int | None = Field(default=None, ge=400, le=599)
    delay_seconds: float = Field(default=0.0, ge=0.0)
    message: str | None = None

    @field_validator("path_regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def matches(self, target: str) -> bool:
        return re.search(self.path_regex, target) is not None


class FaultSet:
    """Faults in injection order; the first one that matches a request applies."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def match(self, target: str) -> Fault | None:
        with self._lock:
            faults = list(self._faults)
        return next((fault for fault in faults if fault.matches(target)), None)
