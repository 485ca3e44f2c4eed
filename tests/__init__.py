"""bilge's tests: unit (pure code, fakes) and integration (real engines)."""
