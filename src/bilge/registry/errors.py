"""Errors of the registry side. All are `BilgeError`s: the CLI shows one line.

RegistryError              a registry failed or answered badly         (exit 1)
├── RegistryUnreachable    nothing answers, or TLS verification failed
├── RegistryDenied         401/403: names the permission that is missing
├── RegistryReadOnly       405: deletes disabled or registry read-only
└── ManifestGone           404 for a manifest (apply: "already gone")
GcError                    `bilge registry gc` could not run safely     (exit 1)
"""

from __future__ import annotations

from bilge.errors import BilgeError


class RegistryError(BilgeError):
    """The registry returned an error or an answer bilge cannot understand."""


class RegistryUnreachable(RegistryError):
    """No connection, a timeout, or a certificate that does not verify."""


class RegistryDenied(RegistryError):
    """401 or 403: the credentials are missing or lack a permission."""


class RegistryReadOnly(RegistryError):
    """405 to a DELETE: deletes are disabled or the registry is read-only."""


class ManifestGone(RegistryError):
    """The manifest or tag does not exist (404)."""


class GcError(BilgeError):
    """A step of the garbage collection failed; the registry was restored."""
