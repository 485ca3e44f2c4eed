"""Registry retention and garbage collection, over the Registry HTTP API v2.

The same shape as the engine side: `collect` reads a registry into an immutable
snapshot, `planner.plan` decides (pure), `apply` deletes manifests re-checking
each one, and `gc` runs the registry's own garbage collector safely.
"""
