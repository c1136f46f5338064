"""``python -m segwork`` runs the CLI; so does this file's path given to ``spark-submit``."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
if not __package__ and sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    # run as a file: its folder first on the path would shadow the standard library
    # (segwork/profile.py for cProfile, which pyspark imports); import the package instead
    sys.path[0] = str(_HERE.parent)

from segwork.cli import main  # noqa: E402

sys.exit(main())
