"""Deterministic generator of the scenario folders in `evals/scenarios/` (see README.md there)."""
