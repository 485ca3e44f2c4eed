"""planner: pure decisions on a snapshot, no I/O.

`core` is `plan(snapshot, policy, now)`, deciding each kind in its own module
(`containers`, `volumes`, `images`, `networks`, `build_cache`) on the shared rules
of `decision`; `reclaim` plans log truncation and orphaned layers; `eviction`
picks the cheapest losses from a plan for the guard; `doctor` turns a snapshot
and its plan into findings; `summary` adds up usage by kind.
"""
