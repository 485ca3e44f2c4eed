"""The `[[registry]]` tables of bilge.toml, validated when loaded.

    [[registry]]
    url = "https://registry.example.com"

    [[registry.rules]]
    repositories = "team/*"
    keep_recent = 10
    older_than = "30d"

    [registry.gc]
    config = "/etc/docker/registry/config.yml"
    systemd_unit = "docker-registry.service"

Like the rest of the policy: frozen, unknown keys forbidden, and every error
one line naming the key (bilge.config.policy turns pydantic's errors into that line).
The core's Policy does not import this module: it calls `validate_registries`
when a policy file has [[registry]] tables. So this module must not import
bilge.config.policy (bounds.py, which it shares with it, is fine).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from datetime import timedelta
from ipaddress import ip_address
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    TypeAdapter,
    field_validator,
    model_validator,
)

from bilge.config.bounds import DAY, SECOND, Count, Deadline, Duration, within

LOOPBACK_NAMES = frozenset({"localhost"})


def _regex(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a regular expression string, got {value!r}")
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


Regex = Annotated[str, BeforeValidator(_regex)]


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegistryRule(_Table):
    """Which tags of the repositories matching `repositories` are deleted.

    A tag is deleted only when every condition allows it: it matches
    `delete_matching` and no `keep_matching`, it is not `latest` (unless
    keep_latest = false), it is not among the `keep_recent` newest of the
    tags that could go, and its image is older than `older_than`.
    """

    repositories: StrictStr = Field(
        min_length=1, description="glob on repository names, e.g. 'team/*'"
    )
    keep_recent: Count = Field(default=10, description="the newest N deletable tags stay")
    keep_matching: tuple[Regex, ...] = Field(
        default=(), description="tags matching any of these regexes stay"
    )
    delete_matching: tuple[Regex, ...] = Field(
        default=(".*",), description="only tags matching one of these regexes may go"
    )
    older_than: Duration = Field(
        default=timedelta(0), description="only images created longer ago than this may go"
    )
    keep_latest: StrictBool = Field(default=True, description="the tag 'latest' always stays")
    order: Literal["created", "semver"] = Field(
        default="created", description="'created' (image creation time) or 'semver' (tag)"
    )
    age: Literal["created", "pushed"] = Field(
        default="created",
        description="what older_than and the newest count by: 'created' (the image config) "
        "or 'pushed' (when the registry stored it; needs [registry.gc] config)",
    )
    untagged_after: Duration | None = Field(
        default=None,
        description="also delete manifests no tag points at, pushed longer ago than this "
        "(needs [registry.gc] config)",
    )
    keep_pulled_within: Duration | None = Field(
        default=None,
        description="images pulled within this long stay (pulls from `bilge registry listen`)",
    )
    untag_shared: StrictBool = Field(
        default=False,
        description="remove a tag that shares its digest with a kept tag alone (untag only)",
    )

    @property
    def needs_storage(self) -> str:
        """The key that needs the registry's storage read, or ""."""
        if self.untagged_after is not None:
            return "untagged_after"
        return "age = 'pushed'" if self.age == "pushed" else ""

    def matches(self, repository: str) -> bool:
        return fnmatch.fnmatchcase(repository, self.repositories)


class RegistryGc(_Table):
    """How `bilge registry gc` reaches a registry's storage and restarts it."""

    config: StrictStr = Field(min_length=1, description="the registry's config.yml")
    restart: StrictStr | None = Field(
        default=None, description="command that restarts the registry (no shell)"
    )
    systemd_unit: StrictStr | None = Field(
        default=None, description="or: the systemd unit to restart"
    )
    binary: StrictStr = Field(
        default="", description="registry binary for garbage-collect (default: found on PATH)"
    )
    delete_untagged: StrictBool = Field(
        default=False, description="also delete untagged manifests (registry 3.0 and newer)"
    )
    timeout: Annotated[Duration, within(SECOND, DAY)] = Field(
        default=timedelta(seconds=60), description="how long a restart may take (1s to 1d)"
    )

    @field_validator("restart")
    @classmethod
    def _splits(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                words = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"cannot split command {value!r}: {exc}") from exc
            if not words:
                raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _one_way_to_restart(self) -> RegistryGc:
        if (self.restart is None) == (self.systemd_unit is None):
            raise ValueError("give exactly one of restart and systemd_unit")
        return self

    def restart_command(self) -> list[str]:
        if self.restart is not None:
            return shlex.split(self.restart)
        return ["systemctl", "restart", str(self.systemd_unit)]


class RegistryConfig(_Table):
    """One registry: where it is, how to trust it, its rules and its gc."""

    url: StrictStr = Field(description="e.g. 'https://registry.example.com'")
    name: StrictStr = Field(default="", description="for --registry (default: host[:port])")
    ca_bundle: StrictStr | None = Field(
        default=None, description="CA certificates (PEM) to verify the registry's TLS with"
    )
    allow_http: StrictBool = Field(
        default=False, description="allow plain http to a host other than 127.0.0.1/localhost"
    )
    timeout: Deadline | None = Field(
        default=None,
        description="deadline of one request to the registry, whole answer included (1s to 1h)",
    )
    rules: tuple[RegistryRule, ...] = Field(default=(), description="first match wins")
    gc: RegistryGc | None = None
    notify_token: SecretStr | None = Field(
        default=None,
        description="bearer token the registry's notifications carry to `bilge registry "
        "listen` (or $BILGE_NOTIFY_TOKEN)",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if "@" in parts.netloc:
            # Not quoted: the part before the @ is a user name and password.
            raise ValueError(
                "credentials do not belong in the url: give the registry's base URL "
                "and log in with `docker login`"
            )
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as 'https://host:5000', got {value!r}")
        if parts.path.strip("/") or parts.query or parts.fragment:
            raise ValueError(f"give the registry's base URL without a path, not {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _plain_http_only_when_safe(self) -> RegistryConfig:
        # Credentials and deletions must not cross a network unencrypted.
        if self.scheme == "http" and not self.allow_http and not is_loopback(self.hostname):
            raise ValueError(
                f"url {self.url!r}: plain http to a host other than 127.0.0.1/localhost "
                "is refused: use https, or set allow_http = true for this registry"
            )
        return self

    @model_validator(mode="after")
    def _storage_when_needed(self) -> RegistryConfig:
        # The Registry API lists neither untagged manifests nor push times: only
        # the storage (found through the registry's config file) tells them.
        for i, rule in enumerate(self.rules):
            if rule.needs_storage and self.gc is None:
                raise ValueError(
                    f"rules[{i}]: {rule.needs_storage} needs the registry's storage: add a "
                    "[registry.gc] table whose config names the registry's config.yml"
                )
        return self

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def host(self) -> str:
        """host[:port], as `docker login` names the registry in its config."""
        return urlsplit(self.url).netloc

    @property
    def label(self) -> str:
        return self.name or self.host

    def rule_for(self, repository: str) -> RegistryRule | None:
        return next((r for r in self.rules if r.matches(repository)), None)


def is_loopback(hostname: str) -> bool:
    if hostname in LOOPBACK_NAMES:
        return True
    try:
        return ip_address(hostname).is_loopback
    except ValueError:
        return False


Registries = tuple[RegistryConfig, ...]

_REGISTRIES: TypeAdapter[Registries] = TypeAdapter(Registries)


def validate_registries(value: object, context: Any = None) -> Registries:
    """The [[registry]] tables of a policy; pydantic's ValidationError when they are bad.

    `context` is the policy's validation context (from a file, bare numbers are
    refused where a unit is needed).
    """
    return _REGISTRIES.validate_python(value, context=context)
