"""`python -m sync` is `arsync`."""

import sys

from sync.cli import main

sys.exit(main())
