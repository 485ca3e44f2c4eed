"""Unit tests: pure code, a fake engine and a fake clock; no daemon."""
