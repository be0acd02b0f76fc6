"""Persistent state: analysis and remediation records (and ADK sessions) on one database."""

from selfheal.state.store import AnalysisRecord, StateStore, make_engine

__all__ = ["AnalysisRecord", "StateStore", "make_engine"]
