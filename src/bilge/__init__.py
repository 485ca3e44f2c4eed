"""bilge: keeps Docker hosts from running out of disk."""

__version__ = "0.1.0"
