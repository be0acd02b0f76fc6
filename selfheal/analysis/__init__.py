"""One analysis end to end: evidence, judge, agents, gate, vote, remediation, record."""
