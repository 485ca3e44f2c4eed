"""Integration tests against private real engines and registries."""
