"""Settings for the whole suite.

Hypothesis profiles: "quick" (the default, for a developer's edit-test loop) and
"ci" (`make test` selects it with HYPOTHESIS_PROFILE=ci): the property tests of the
safety rules then draw 300 snapshots each.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("quick", max_examples=40, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))
