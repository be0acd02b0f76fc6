"""Scenarios (simulated clusters), golden-transcript eval sets and the custom eval metrics."""
