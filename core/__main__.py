"""``python -m core`` runs the ``storelens`` command line."""

import sys

from core.cli import main

sys.exit(main())
