"""The guard's table of bilge.toml, `[watch]`: watermarks, sampling, metrics, alerts
and the scheduled HTML report.

A module of its own so that policy.py stays one screenful per concern; policy.py
imports `WatchPolicy` from here and re-exports it, so `bilge.config.policy` stays
the one place callers import the policy from.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from bilge.config.bounds import HOUR, Address, Duration, Interval, Percent, within
from bilge.config.units import format_percent
from bilge.guard.alerts import url_problem

#: The scheduled report is written at most once a minute (rendering it reads
#: the whole engine) and at least once a week (an older one misleads).
ReportEvery = Annotated[Duration, within(timedelta(minutes=1), timedelta(days=7))]


def _webhook_url(value: Any) -> str:
    # The URL is a secret: neither the message nor pydantic's error (which
    # quotes the input for the types it checks itself) may contain it.
    if not isinstance(value, str):
        raise ValueError("expected a string")
    problem = url_problem(value) if value else None
    if problem is not None:
        raise ValueError(problem)
    return value


def _report_path(value: Any) -> str:
    # A path the guard will write to for as long as it runs: refused at load
    # time rather than failing every hour.
    if not isinstance(value, str):
        raise ValueError('expected a string (a file path, or "" for no report)')
    if "\x00" in value:
        raise ValueError("a file path cannot contain a NUL character")
    if value.endswith("/"):
        raise ValueError(f"expected a file, not a directory: {value!r}")
    return value


WebhookUrl = Annotated[str, BeforeValidator(_webhook_url)]
ReportPath = Annotated[str, BeforeValidator(_report_path)]


class WatchPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    high: Percent = Field(default=0.85, description="disk usage that starts an eviction")
    low: Percent = Field(default=0.75, description="usage an eviction brings the disk down to")
    inodes_high: Percent = Field(default=0.90, description="inode usage that starts an eviction")
    inodes_low: Percent = Field(default=0.80, description="inode usage an eviction goes down to")
    interval: Interval = Field(
        default=timedelta(seconds=30), description="time between two usage samples (1s to 1d)"
    )
    metrics_addr: Address = Field(
        default="127.0.0.1:9808",
        description="where the guard serves Prometheus metrics (HOST:PORT)",
    )
    webhook_url: WebhookUrl = Field(
        default="", repr=False, description="alerts are POSTed here (or set $BILGE_WEBHOOK_URL)"
    )
    webhook_format: Literal["json", "slack"] = Field(
        default="json", description="json (generic) or slack (an incoming webhook)"
    )
    report: ReportPath = Field(
        default="", description='write the HTML report to this file ("": no report)'
    )
    report_every: ReportEvery = Field(
        default=HOUR, description="how often the guard writes the report (1m to 7d)"
    )

    @model_validator(mode="after")
    def _low_below_high(self) -> WatchPolicy:
        # As kubelet's image GC: a low watermark at or above the high one would
        # make every eviction either empty or endless.
        for low, high in (("low", "high"), ("inodes_low", "inodes_high")):
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value >= high_value:
                raise PydanticCustomError(
                    "watermark_order",
                    "{low} ({low_value}) must be below {high} ({high_value})",
                    {
                        "low": low,
                        "high": high,
                        "low_value": format_percent(low_value),
                        "high_value": format_percent(high_value),
                    },
                )
        return self
