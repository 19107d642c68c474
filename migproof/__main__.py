from __future__ import annotations

import sys

from migproof.cli import main

sys.exit(main())
