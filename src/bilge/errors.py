"""bilge's errors. The CLI catches `BilgeError` once and prints one line.

    BilgeError                  base; never raised itself
    ├── UsageError              bad command-line usage                  (exit 2)
    ├── ConfigError             bilge.toml unreadable or invalid         (exit 2)
    ├── PlanFileError           a saved plan is corrupt or unusable      (exit 2)
    ├── EngineError             the Docker engine failed or answered badly (exit 1)
    │   ├── EngineUnreachable   no engine answers at the given address   (exit 1)
    │   ├── ObjectGone          the object no longer exists (apply: skipped)
    │   └── ObjectConflict      the engine refused with 409 (apply: skipped)
    └── StateError              the state store cannot be used           (exit 1)

Each message is written to stand alone on one line: it says what failed and,
where it helps, what to do about it.
"""

from __future__ import annotations

#: Exit codes, as docs/architecture.md and the README define them.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3


class BilgeError(Exception):
    """Base of every error bilge reports to the user."""

    exit_code = EXIT_ERROR


class UsageError(BilgeError):
    """The command line asks for something impossible (e.g. apply without --yes)."""

    exit_code = EXIT_USAGE


class ConfigError(BilgeError):
    """The policy file cannot be read or does not validate; names file and key."""

    exit_code = EXIT_USAGE


class PlanFileError(BilgeError):
    """A saved plan file cannot be read, is not a bilge plan, or is for another host."""

    exit_code = EXIT_USAGE


class EngineError(BilgeError):
    """The engine returned an error or an answer bilge cannot understand."""


class EngineUnreachable(EngineError):
    """Nothing answers at the engine address."""


class StateError(BilgeError):
    """The state store is unusable (corrupt, wrong schema, unreadable)."""


class ObjectGone(EngineError):
    """The object vanished (404); apply records the action as skipped."""


class ObjectConflict(EngineError):
    """The engine refused the removal with 409 (e.g. in use); apply skips it."""
