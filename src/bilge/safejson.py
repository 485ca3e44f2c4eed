"""JSON from peers and files, parsed without ever crashing bilge.

`json.loads` raises RecursionError, not ValueError, on arrays or objects nested
thousands deep: an engine, a registry or a hand-made file could send that, and
every caller would have to know. Here it is one more kind of bad JSON.
"""

from __future__ import annotations

import json
from typing import Any


def loads_json(data: str | bytes | bytearray) -> Any:
    """`json.loads`, raising ValueError (never RecursionError) for any bad input."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
