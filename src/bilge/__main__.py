"""Allow `python -m bilge`."""

import sys

from bilge.cli import main

sys.exit(main())
