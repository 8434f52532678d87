"""``python -m peer_local.cli`` is ``avatar``."""

import sys

from peer_local.cli import main

sys.exit(main())
