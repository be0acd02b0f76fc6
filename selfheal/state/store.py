"""The state store: analysis records and remediation records, on SQLite or PostgreSQL.

One SQLAlchemy async engine serves both our tables and ADK's session tables, so a deployment has a
single database. Remediation claims are atomic in the database, so two replicas never file twice
for one rollout revision.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tools.remediation import RemediationRecord

log = logging.getLogger(__name__)

_metadata = MetaData()

_analyses = Table(
    "selfheal_analyses",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("memory_key", String(512), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("rollout", String(253), nullable=False),
    Column("canary_hash", String(64), nullable=False),
    # The stable and canary selectors the analysis compared: an answer for other pods is another answer.
    Column("selectors", String(2100), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("promote", Integer, nullable=False),
    Column("confidence", Integer, nullable=False),
    Column("judge_verdict", String(16), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("response", Text, nullable=False),
    Column("report", Text, nullable=False, default=""),
    Index("ix_selfheal_analyses_key", "memory_key", "canary_hash", "created_at"),
)

_remediations = Table(
    "selfheal_remediations",
    _metadata,
    Column("fingerprint", String(512), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("status", String(32), nullable=False),
    Column("record", Text, nullable=False, default="{}"),
    # When the holder's lease ends (claimed_at + the holder's own ttl); NULL in rows of older stores.
    Column("lease_until", DateTime(timezone=True), nullable=True),
)


class AnalysisRecord(BaseModel):
    memory_key: str
    namespace: str
    rollout: str
    canary_hash: str
    selectors: str = ""
    created_at: dt.datetime
    promote: bool
    confidence: int
    judge_verdict: str
    duration_ms: float
    response: dict
    report: str = ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes even for timezone=True columns.
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def make_engine(url: str) -> AsyncEngine:
    """An async engine for the state URL; creates the SQLite folder when needed."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # A generous busy timeout so concurrent writers wait instead of failing with "locked".
        return create_async_engine(url, connect_args={"timeout": 15})
    return create_async_engine(url, pool_pre_ping=True)


def _add_missing_columns(sync_conn) -> None:
    """Stores created by an older version get the columns added since (no other migration is needed)."""
    added = [("selfheal_remediations", "lease_until", DateTime(timezone=True), ""),
             ("selfheal_analyses", "selectors", String(2100), " NOT NULL DEFAULT ''")]
    for table, column, kind, suffix in added:
        columns = {c["name"] for c in inspect(sync_conn).get_columns(table)}
        if column not in columns:
            sql_type = kind.compile(dialect=sync_conn.dialect)
            sync_conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}{suffix}")


class StateStore:
    """Analysis and remediation records. Implements `tools.remediation.RemediationStore`."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> "StateStore":
        return cls(make_engine(url))

    async def init(self) -> None:
        for attempt in range(3):
            try:
                async with self.engine.begin() as conn:
                    await conn.run_sync(_metadata.create_all)
                break
            except DBAPIError as exc:
                # Two processes (or stores) creating the tables of a fresh database at the same
                # moment: the loser sees "already exists"; the next checkfirst pass finds them.
                if "already exists" not in str(exc).lower() or attempt == 2:
                    raise
        try:
            async with self.engine.begin() as conn:
                await conn.run_sync(_add_missing_columns)
        except DBAPIError:  # another replica added them at the same moment
            log.debug("columns were added concurrently")

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """Raise when the database cannot be read (readiness). It reads a table: `SELECT 1` would
        pass on a SQLite file that another connection has locked."""
        async with self.engine.connect() as conn:
            await conn.execute(select(_analyses.c.id).limit(1))

    # --- analyses ------------------------------------------------------------
    async def save_analysis(self, record: AnalysisRecord) -> None:
        values = record.model_dump()
        values["promote"] = int(record.promote)
        values["response"] = json.dumps(record.response)
        async with self.engine.begin() as conn:
            await conn.execute(insert(_analyses).values(**values))

    async def latest_analysis(
        self, memory_key: str, canary_hash: str, max_age_seconds: float | None = None, selectors: str = ""
    ) -> AnalysisRecord | None:
        """The newest analysis of this rollout revision with these selectors, if younger than `max_age_seconds`."""
        query = (
            select(_analyses)
            .where(_analyses.c.memory_key == memory_key, _analyses.c.canary_hash == canary_hash,
                   _analyses.c.selectors == selectors)
            .order_by(_analyses.c.created_at.desc())
            .limit(1)
        )
        if max_age_seconds is not None:
            query = query.where(_analyses.c.created_at >= _now() - dt.timedelta(seconds=max_age_seconds))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return self._analysis(row) if row else None

    async def recent_analyses(self, limit: int = 20, memory_key: str | None = None) -> list[AnalysisRecord]:
        query = select(_analyses).order_by(_analyses.c.created_at.desc()).limit(limit)
        if memory_key:
            query = query.where(_analyses.c.memory_key == memory_key)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [self._analysis(row) for row in rows]

    @staticmethod
    def _analysis(row) -> AnalysisRecord:
        data = dict(row)
        data.pop("id", None)
        data["promote"] = bool(data["promote"])
        data["response"] = json.loads(data["response"])
        data["created_at"] = _aware(data["created_at"])
        return AnalysisRecord(**data)

    # --- remediations (tools.remediation.RemediationStore) -------------------
    async def claim_remediation(self, fingerprint: str, owner: str, ttl_seconds: float) -> bool:
        """Atomically take (or renew) the lease to file for `fingerprint` (see RemediationStore).

        False when the saved record already has an issue, or another owner holds an unexpired
        lease; otherwise this owner holds the lease until now + ttl and True is returned.
        """
        now = _now()
        until = now + dt.timedelta(seconds=ttl_seconds)
        async with self.engine.begin() as conn:
            try:
                await conn.execute(
                    insert(_remediations).values(
                        fingerprint=fingerprint, owner=owner, claimed_at=now, lease_until=until, status="claimed",
                        record="{}",
                    )
                )
                return True
            except IntegrityError:
                pass
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(_remediations).where(_remediations.c.fingerprint == fingerprint))
            ).mappings().first()
            if row is None:
                return False
            record = json.loads(row["record"] or "{}")
            if record.get("issue_number"):
                return False
            # The holder's lease lasts as long as the holder asked for (older rows: this caller's ttl).
            expires = _aware(row["lease_until"] or row["claimed_at"] + dt.timedelta(seconds=ttl_seconds))
            if row["owner"] and row["owner"] != owner and expires > now:
                return False
            # Compare-and-swap on the old lease: of two racing takers only one wins.
            old_lease = _remediations.c.claimed_at == row["claimed_at"]
            result = await conn.execute(
                update(_remediations)
                .where(_remediations.c.fingerprint == fingerprint, _remediations.c.owner == row["owner"], old_lease)
                .values(owner=owner, claimed_at=now, lease_until=until)
            )
            return result.rowcount == 1

    async def get_remediation(self, fingerprint: str) -> RemediationRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(_remediations).where(_remediations.c.fingerprint == fingerprint))
            ).mappings().first()
        if row is None or row["record"] in (None, "", "{}"):
            return None
        return RemediationRecord.model_validate_json(row["record"])

    async def list_remediations(self, status: str) -> list[RemediationRecord]:
        """Every saved remediation record in `status` (tools.remediation.ResumableStore).

        Lease-only rows keep status `claimed` and an empty record, so they are never returned.
        """
        query = select(_remediations.c.record).where(_remediations.c.status == status)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).scalars().all()
        return [RemediationRecord.model_validate_json(row) for row in rows if row not in (None, "", "{}")]

    async def save_remediation(self, record: RemediationRecord) -> None:
        payload = record.model_dump_json()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(_remediations)
                .where(_remediations.c.fingerprint == record.fingerprint)
                .values(status=record.status, record=payload)
            )
            if result.rowcount == 0:
                await conn.execute(
                    insert(_remediations).values(
                        fingerprint=record.fingerprint,
                        owner="",
                        claimed_at=_now(),
                        status=record.status,
                        record=payload,
                    )
                )
