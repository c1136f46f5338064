"""``python -m segwork`` runs the CLI."""

import sys

from segwork.cli import main

sys.exit(main())
