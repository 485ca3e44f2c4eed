"""planner: pure decisions on a snapshot, no I/O.

`core` is `plan(snapshot, policy, now)`; `eviction` picks the cheapest losses
from a plan for the guard; `doctor` turns a snapshot and its plan into
findings; `summary` adds up usage by kind; `reclaim` says what truncating a log
would free.
"""
