"""``python -m avatar`` is ``avatar``."""

import sys

from avatar.main import main

sys.exit(main())
