"""pyproject.toml: the package metadata setuptools builds without deprecation warnings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_expression() -> None:
    # A table ({ text = "MIT" }) makes setuptools 77 and newer warn on every
    # install and build, and is refused from 2027.
    assert PYPROJECT["project"]["license"] == "MIT"


def test_the_build_requires_a_setuptools_that_reads_spdx_licenses() -> None:
    (requirement,) = PYPROJECT["build-system"]["requires"]
    match = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", requirement)
    assert match is not None and int(match.group(1)) >= 77
