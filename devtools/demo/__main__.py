"""``python -m devtools.demo`` (what ``scripts/demo`` runs once ``scripts/setup`` is done)."""

import sys

from .main import main

sys.exit(main())
