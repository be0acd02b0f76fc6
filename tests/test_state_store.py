"""The state store (selfheal.state.StateStore) on SQLite and on a real PostgreSQL.

Analysis records: save, latest per (memoryId, canary hash) within a TTL, recent. Remediation
claims follow tools.remediation.RemediationStore: atomic across processes (two engines on one
PostgreSQL racing for one fingerprint: exactly one wins), renewable by the same owner, taken over
when the lease is stale, refused once a record with an issue number exists.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from selfheal.state import AnalysisRecord, StateStore
from support.postgres import Postgres
from tools.remediation import RemediationRecord, RemediationStore

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(120)]

NOW = dt.datetime.now(dt.timezone.utc)


def record(memory_key: str = "rollout:demo/app", canary_hash: str = "abc123", *, age_seconds: float = 0,
           promote: bool = False, confidence: int = 90) -> AnalysisRecord:
    return AnalysisRecord(
        memory_key=memory_key, namespace="demo", rollout="app", canary_hash=canary_hash,
        created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=age_seconds),
        promote=promote, confidence=confidence, judge_verdict="promote" if promote else "abort", duration_ms=1234.5,
        response={"analysis": f"{canary_hash} {age_seconds}", "promote": promote, "confidence": confidence},
        report="| metric | stable | canary |",
    )  # fmt: skip


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    server = Postgres.start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'state.db'}"  # the folder is created
    else:
        url = request.getfixturevalue("postgres").url
    state = StateStore.from_url(url)
    await state.init()
    await state.init()  # idempotent: a second replica starting on the same database
    try:
        yield state
    finally:
        if request.param == "postgresql":
            async with state.engine.begin() as conn:
                await conn.exec_driver_sql("DELETE FROM selfheal_analyses")
                await conn.exec_driver_sql("DELETE FROM selfheal_remediations")
        await state.close()


async def test_store_implements_the_remediation_protocol(store: StateStore) -> None:
    assert isinstance(store, RemediationStore)
    await store.ping()


async def test_save_and_latest_round_trip(store: StateStore) -> None:
    saved = record(promote=True, confidence=97)
    await store.save_analysis(saved)
    latest = await store.latest_analysis(saved.memory_key, saved.canary_hash)
    assert latest is not None
    assert latest.model_dump(exclude={"created_at"}) == saved.model_dump(exclude={"created_at"})
    assert latest.promote is True and isinstance(latest.response, dict)
    assert latest.created_at.tzinfo is not None
    assert abs((latest.created_at - saved.created_at).total_seconds()) < 0.001


async def test_latest_is_per_memory_id_and_canary_hash_and_newest_first(store: StateStore) -> None:
    await store.save_analysis(record(canary_hash="old", age_seconds=30))
    await store.save_analysis(record(canary_hash="new", age_seconds=20))
    await store.save_analysis(record(canary_hash="new", age_seconds=5, promote=True))
    await store.save_analysis(record(memory_key="rollout:other/app", canary_hash="new", age_seconds=1))
    latest = await store.latest_analysis("rollout:demo/app", "new")
    assert latest is not None and latest.response["analysis"] == "new 5"
    assert (await store.latest_analysis("rollout:demo/app", "old")).response["analysis"] == "old 30"
    assert await store.latest_analysis("rollout:demo/app", "unseen") is None
    assert await store.latest_analysis("rollout:nobody/app", "new") is None


async def test_latest_honours_the_ttl(store: StateStore) -> None:
    await store.save_analysis(record(age_seconds=120))
    assert await store.latest_analysis("rollout:demo/app", "abc123", max_age_seconds=60) is None
    assert (await store.latest_analysis("rollout:demo/app", "abc123", max_age_seconds=300)) is not None
    assert (await store.latest_analysis("rollout:demo/app", "abc123")) is not None  # no TTL: any age
    await store.save_analysis(record(age_seconds=1))
    fresh = await store.latest_analysis("rollout:demo/app", "abc123", max_age_seconds=60)
    assert fresh is not None and fresh.response["analysis"] == "abc123 1"


async def test_recent_is_newest_first_limited_and_filtered(store: StateStore) -> None:
    for age in (50, 40, 30):
        await store.save_analysis(record(canary_hash=f"h{age}", age_seconds=age))
    await store.save_analysis(record(memory_key="rollout:other/app", age_seconds=10))
    everything = await store.recent_analyses()
    assert [r.memory_key for r in everything][0] == "rollout:other/app" and len(everything) == 4
    mine = await store.recent_analyses(limit=2, memory_key="rollout:demo/app")
    assert [r.canary_hash for r in mine] == ["h30", "h40"]


# --------------------------------------------------------------------------------------------------
# Remediation claims
# --------------------------------------------------------------------------------------------------

FP = "demo-bad/canary-demo/7c9d5f6b8"


async def test_claim_is_exclusive_while_the_lease_lasts_and_renewable_by_its_owner(store: StateStore) -> None:
    assert await store.claim_remediation(FP, "replica-a", 300) is True
    assert await store.claim_remediation(FP, "replica-b", 300) is False
    assert await store.claim_remediation(FP, "replica-a", 300) is True  # renew
    assert await store.claim_remediation(FP, "replica-b", 300) is False
    # Sub-step keys are independent leases.
    assert await store.claim_remediation(f"{FP}#session", "replica-b", 300) is True
    assert await store.claim_remediation(f"{FP}#session", "replica-a", 300) is False


async def test_a_stale_lease_is_taken_over(store: StateStore) -> None:
    assert await store.claim_remediation(FP, "crashed-replica", 0.2) is True
    assert await store.claim_remediation(FP, "replica-b", 0.2) is False
    await asyncio.sleep(0.3)
    assert await store.claim_remediation(FP, "replica-b", 300) is True
    assert await store.claim_remediation(FP, "crashed-replica", 300) is False


async def test_no_claim_once_an_issue_is_recorded(store: StateStore) -> None:
    assert await store.claim_remediation(FP, "replica-a", 300) is True
    assert await store.get_remediation(FP) is None  # a lease alone is not a record
    await store.save_remediation(RemediationRecord(fingerprint=FP, repo="https://github.com/acme/shop",
                                                   issue_number=7, issue_url="https://github.com/acme/shop/issues/7",
                                                   status="issue_filed"))
    for owner in ("replica-a", "replica-b"):
        assert await store.claim_remediation(FP, owner, 0) is False
    saved = await store.get_remediation(FP)
    assert saved is not None and saved.issue_number == 7 and saved.status == "issue_filed"


async def test_a_record_without_issue_does_not_block_a_claim(store: StateStore) -> None:
    # A dry run or an error leaves a record without an issue number: filing may still happen.
    await store.save_remediation(RemediationRecord(fingerprint=FP, repo="https://github.com/acme/shop", status="dry_run"))
    assert await store.claim_remediation(FP, "replica-a", 300) is True
    assert await store.claim_remediation(FP, "replica-b", 300) is False
    # Saving updates in place and keeps the lease.
    await store.save_remediation(RemediationRecord(fingerprint=FP, repo="https://github.com/acme/shop",
                                                   status="error"))
    assert (await store.get_remediation(FP)).status == "error"
    assert await store.claim_remediation(FP, "replica-b", 300) is False


async def test_concurrent_claims_from_two_engines_on_postgresql(postgres: Postgres) -> None:
    """Two replicas (two engines, two connection pools) race for the same fingerprints."""
    replicas = [StateStore.from_url(postgres.url), StateStore.from_url(postgres.url)]
    try:
        await asyncio.gather(*(replica.init() for replica in replicas))
        for round_ in range(10):
            fingerprint = f"demo-race/app/hash{round_}"
            claims = [replicas[i % 2].claim_remediation(fingerprint, f"replica-{i}", 300) for i in range(8)]
            results = await asyncio.gather(*claims)
            assert sum(results) == 1, (round_, results)
        # Stale-lease takeover races too: exactly one of the takers wins.
        await replicas[0].claim_remediation("demo-race/app/stale", "crashed", 0.1)
        await asyncio.sleep(0.2)
        takers = [replicas[i % 2].claim_remediation("demo-race/app/stale", f"taker-{i}", 300) for i in range(8)]
        assert sum(await asyncio.gather(*takers)) == 1
    finally:
        async with replicas[0].engine.begin() as conn:
            await conn.exec_driver_sql("DELETE FROM selfheal_remediations")
        await asyncio.gather(*(replica.close() for replica in replicas))


async def test_concurrent_claims_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    replicas = [StateStore.from_url(url), StateStore.from_url(url)]
    try:
        await replicas[0].init()
        results = await asyncio.gather(*(replicas[i % 2].claim_remediation(FP, f"r{i}", 300) for i in range(6)))
        assert sum(results) == 1
    finally:
        await asyncio.gather(*(replica.close() for replica in replicas))


async def test_a_store_from_before_lease_until_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE selfheal_remediations (fingerprint VARCHAR(512) PRIMARY KEY, owner VARCHAR(128) NOT NULL, "
                "claimed_at DATETIME NOT NULL, status VARCHAR(32) NOT NULL, record TEXT NOT NULL)")
    old.execute("INSERT INTO selfheal_remediations VALUES (?, 'old-replica', ?, 'claimed', '{}')",
                (FP, (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=600)).strftime("%Y-%m-%d %H:%M:%S.%f")))
    old.commit()
    old.close()
    state = StateStore.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        await state.init()
        # The old row's lease (600 s ago, no lease_until) is judged with the caller's ttl.
        assert await state.claim_remediation(FP, "new-replica", 3600) is False
        assert await state.claim_remediation(FP, "new-replica", 300) is True
        assert await state.claim_remediation(FP, "old-replica", 1) is False  # now held until +300 s
    finally:
        await state.close()


async def test_stores_creating_a_fresh_database_at_once_do_not_collide(tmp_path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    stores = [StateStore.from_url(url) for _ in range(6)]
    try:
        await asyncio.gather(*(store.init() for store in stores))
        assert await stores[0].recent_analyses() == []
    finally:
        await asyncio.gather(*(store.close() for store in stores))
