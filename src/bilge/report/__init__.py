"""Rendering of snapshots, plans, outcomes and history: terminal and JSON."""
