"""``python -m storage.cli``: the documented name of the command line in :mod:`services.cli`."""

import sys

from services.cli import main

if __name__ == "__main__":
    sys.exit(main())
