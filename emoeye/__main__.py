"""``python -m emoeye``."""

import sys

from emoeye.cli import main

sys.exit(main())
