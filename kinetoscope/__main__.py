"""``python -m kinetoscope``: the same app as the ``kinetoscope`` command."""

import sys

from kinetoscope.cli import main

if __name__ == "__main__":  # guarded: forkserver and spawn workers import the main module again
    sys.exit(main())
