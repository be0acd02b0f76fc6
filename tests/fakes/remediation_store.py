"""A real `tools.remediation.RemediationStore` (and `ResumableStore`) on one JSON file, for tests.

Several instances over the same file behave like a restarted process or another replica: every
call re-reads the file under an exclusive `flock`, so claims are atomic across instances.

Fixture `remediation_store` (import it into a test module): a store in the test's tmp_path; build
another `FileRemediationStore(store.path)` to simulate a restart or a second replica.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tools.remediation import RemediationRecord


class FileRemediationStore:
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.path.with_name(self.path.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = json.loads(self.path.read_text()) if self.path.exists() else {}
                data.setdefault("records", {})
                data.setdefault("leases", {})
                before = json.dumps(data, sort_keys=True)
                yield data
                if json.dumps(data, sort_keys=True) != before:
                    tmp = self.path.with_name(self.path.name + ".tmp")
                    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
                    os.replace(tmp, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    async def claim_remediation(self, fingerprint: str, owner: str, ttl_seconds: float) -> bool:
        now = self.clock()
        with self._locked() as data:
            record = data["records"].get(fingerprint)
            if record is not None and record.get("issue_number") is not None:
                return False
            lease = data["leases"].get(fingerprint)
            if lease is not None and lease["owner"] != owner and lease["expires"] > now:
                return False
            data["leases"][fingerprint] = {"owner": owner, "expires": now + ttl_seconds}
            return True

    async def get_remediation(self, fingerprint: str) -> RemediationRecord | None:
        with self._locked() as data:
            raw = data["records"].get(fingerprint)
        return RemediationRecord.model_validate(raw) if raw is not None else None

    async def save_remediation(self, record: RemediationRecord) -> None:
        with self._locked() as data:
            data["records"][record.fingerprint] = record.model_dump(mode="json")

    async def list_remediations(self, status: str) -> list[RemediationRecord]:
        """`tools.remediation.ResumableStore`: every record in `status` (lease keys hold no records)."""
        with self._locked() as data:
            raw = [value for value in data["records"].values() if value.get("status") == status]
        return [RemediationRecord.model_validate(value) for value in raw]

    # inspection for tests ----------------------------------------------------------------
    def leases(self) -> dict[str, dict[str, Any]]:
        with self._locked() as data:
            return dict(data["leases"])

    def records(self) -> dict[str, RemediationRecord]:
        with self._locked() as data:
            return {key: RemediationRecord.model_validate(value) for key, value in data["records"].items()}


@pytest.fixture
def remediation_store(tmp_path: Path) -> FileRemediationStore:
    return FileRemediationStore(tmp_path / "state" / "remediation.json")
