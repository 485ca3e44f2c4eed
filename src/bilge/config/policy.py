"""The user's rules (bilge.toml), validated when loaded.

A `Policy` is frozen and always valid: every way of building one goes through
pydantic with unknown keys forbidden. Whatever is wrong with a policy file
becomes one `ConfigError` line naming the file and the dotted key:

    /etc/bilge/bilge.toml: images.unused_after: invalid duration '7 days' (use e.g. ...)
    bilge.toml: unknown key 'volumes.namd'
    bilge.toml: watch.low (90%) must be below watch.high (85%)

In the file, durations are strings ("24h"), sizes strings or byte counts
("10GB", 1048576) and watermarks strings with a % sign ("85%"). Built in
Python, a policy also takes `timedelta`s and, for watermarks, fractions (0.85).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    ValidationError,
    ValidationInfo,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from bilge.config.bounds import (
    DAY,
    Count,
    Deadline,
    Duration,
    Render,
    Size,
)
from bilge.config.units import duration_text
from bilge.config.watch import WatchPolicy
from bilge.errors import ConfigError

#: Validation context marking input read from a file, where bare numbers are
#: refused as watermarks (85 and 0.85 both look plausible there).
_FROM_FILE = {"from_file": True}


Globs = tuple[StrictStr, ...]


def _registry_tables(value: Any, info: ValidationInfo) -> tuple[Any, ...]:
    # The registry package builds on the core, which imports its model only for a
    # policy with [[registry]] tables, and then at once: a bad one fails every command.
    from bilge.registry.policy import validate_registries

    return validate_registries(value, info.context)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContainersPolicy(_Section):
    exited_after: Duration = Field(
        default=DAY, description="exited/dead containers, by time finished"
    )
    created_after: Duration = Field(
        default=DAY, description="created but never started, by time created"
    )
    keep_names: Globs = Field(default=(), description="glob patterns on container names")


class VolumesPolicy(_Section):
    anonymous_after: Duration = Field(default=DAY, description="unreferenced anonymous volumes")
    named: StrictBool = Field(
        default=False, description="unreferenced named volumes are kept unless this is true"
    )
    named_after: Duration = Field(
        default=timedelta(days=30), description="unreferenced named volumes, when named = true"
    )
    protect_data: StrictBool = Field(
        default=True, description="a volume that holds a database's files is never removed"
    )
    keep_names: Globs = Field(default=(), description="glob patterns on volume names")


class ImagesPolicy(_Section):
    dangling_after: Duration = Field(default=timedelta(hours=1), description="untagged images")
    unused_after: Duration = Field(
        default=timedelta(days=7), description="by last use when known, else by creation"
    )
    keep_recent: Count = Field(
        default=1, description="per repository, the newest N tagged images stay"
    )
    keep: Globs = Field(default=(), description="glob patterns on repo:tag")


class BuildCachePolicy(_Section):
    keep_storage: Size = Field(default=10 * 1000**3, description="space the build cache may keep")
    unused_after: Duration = Field(
        default=timedelta(days=7), description="cache records not used for this long"
    )


class NetworksPolicy(_Section):
    unused_after: Duration = Field(
        default=DAY, description="networks without endpoints, by creation"
    )


class LogsPolicy(_Section):
    max_size: Size = Field(
        default=0,
        description="truncate json-file logs larger than this, running containers too (0: never)",
    )


class OrphansPolicy(_Section):
    remove: StrictBool = Field(
        default=False,
        description="remove layer directories no image or container references (or --orphans)",
    )
    older_than: Duration = Field(
        default=DAY, description="only orphans left untouched this long (a pull may be running)"
    )


class EnginePolicy(_Section):
    request_timeout: Deadline = Field(
        default=timedelta(seconds=60),
        description="deadline of one request to an engine, whole answer included (1s to 1h)",
    )


class Policy(_Section):
    keep_label: StrictStr = Field(
        default="bilge.keep",
        min_length=1,
        description="an object carrying this label is never removed",
    )
    containers: ContainersPolicy = Field(default_factory=ContainersPolicy)
    volumes: VolumesPolicy = Field(default_factory=VolumesPolicy)
    images: ImagesPolicy = Field(default_factory=ImagesPolicy)
    build_cache: BuildCachePolicy = Field(default_factory=BuildCachePolicy)
    networks: NetworksPolicy = Field(default_factory=NetworksPolicy)
    logs: LogsPolicy = Field(default_factory=LogsPolicy)
    orphans: OrphansPolicy = Field(default_factory=OrphansPolicy)
    watch: WatchPolicy = Field(default_factory=WatchPolicy)
    engine: EnginePolicy = Field(default_factory=EnginePolicy)
    registry: Annotated[tuple[Any, ...], PlainValidator(_registry_tables)] = Field(
        default=(), description="registries to clean: [[registry]] tables, see docs/registry.md"
    )


DEFAULT_POLICY = Policy()


def with_orphans(policy: Policy) -> Policy:
    """The policy with orphan removal switched on (the --orphans option)."""
    return policy.model_copy(update={"orphans": policy.orphans.model_copy(update={"remove": True})})


# --- finding and loading -------------------------------------------------------------


def load_policy(path: Path | None) -> Policy:
    """Read and validate the policy at `path`; None gives DEFAULT_POLICY."""
    if path is None:
        return DEFAULT_POLICY
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from exc
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str) -> Policy:
    """Validate TOML `text`; `source` names it in errors (usually the file's path)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from exc
    except RecursionError:  # arrays nested thousands deep: tomllib recurses
        raise ConfigError(f"{source}: invalid TOML: nested too deeply") from None
    try:
        return Policy.model_validate(data, context=_FROM_FILE)
    except ValidationError as exc:
        # Not chained: pydantic's own text quotes the input, which may hold the
        # webhook URL (a secret) and would show in a -v traceback.
        raise ConfigError(_one_line(source, exc)) from None


# --- one line per ValidationError ----------------------------------------------------


def _one_line(source: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    line = f"{source}: {_describe(errors[0])}"
    if len(errors) > 1:
        line += f" (and {len(errors) - 1} more)"
    return line


def _describe(error: ErrorDetails) -> str:
    key = _dotted(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {key!r}"
    if kind == "watermark_order":
        return _order_message(key, error)
    return f"{key}: {_problem(error)}" if key else _problem(error)


def _dotted(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else part
    return key


def _order_message(section: str, error: ErrorDetails) -> str:
    # The keys are named relative to their table; qualify them like the others.
    ctx = dict(error.get("ctx", {}))
    prefix = f"{section}." if section else ""
    return (
        f"{prefix}{ctx['low']} ({ctx['low_value']}) must be below "
        f"{prefix}{ctx['high']} ({ctx['high_value']})"
    )


_EXPECTED = {
    "bool_type": "expected true or false",
    "int_type": "expected a whole number",
    "string_type": "expected a string",
    "tuple_type": "expected a list of strings",
    "model_type": "expected a table",
    "timedelta_type": "expected a duration such as '24h'",
}


def _problem(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {_shown(error['input'])}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}, got {_shown(error['input'])}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {_shown(error['input'])}"
    if kind == "string_too_short":
        return "must not be empty"
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]


def _shown(value: object) -> str:
    """A value as the user wrote it in TOML, shortened."""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- writing the effective policy back -----------------------------------------------


def policy_to_toml(policy: Policy) -> str:
    """The whole policy as commented TOML that parse_policy reads back unchanged."""
    lines = ["# bilge policy; durations like 90s/30m/24h/7d, sizes like 500MB/10GiB."]
    lines += _render_fields(policy)
    for header, section in _sections(policy):
        lines += ["", header, *_render_fields(section)]
    return "\n".join(lines) + "\n"


def _sections(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, BaseModel]]:
    """Every table below `model`, as (header, table); a tuple of tables is an
    array of tables, whose own tables follow each element (as TOML reads them)."""
    for name in type(model).model_fields:
        value, key = getattr(model, name), f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield f"[{key}]", value
            yield from _sections(value, f"{key}.")
        elif _is_tables(value):
            for item in value:
                yield f"[[{key}]]", item
                yield from _sections(item, f"{key}.")


def _is_tables(value: object) -> bool:
    return isinstance(value, tuple) and any(isinstance(v, BaseModel) for v in value)


def _render_fields(model: BaseModel) -> list[str]:
    # Tables are rendered by _sections; None means "not set", which TOML writes
    # by leaving the key out.
    rows = [
        (f"{name} = {_toml_value(value, info)}", info.description)
        for name, info in type(model).model_fields.items()
        if not isinstance(value := getattr(model, name), BaseModel)
        and not _is_tables(value)
        and value is not None
    ]
    width = max((len(text) for text, _ in rows), default=0)
    return [f"{text:<{width}}  # {note}" if note else text for text, note in rows]


def _toml_value(value: object, info: FieldInfo) -> str:
    for meta in info.metadata:
        if isinstance(meta, Render):
            return _toml_string(meta.to_text(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return _toml_string(duration_text(value))
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_string(item) for item in value) + "]"
    if isinstance(value, str):
        return _toml_string(value)
    return str(value)


def _toml_string(text: str) -> str:
    """A TOML basic string; escapes what TOML forbids raw (quotes, \\, controls)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
