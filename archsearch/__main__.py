"""``python -m archsearch`` is the ``archsearch`` command."""
import sys

from .cli import main

if __name__ == "__main__":  # not when a spawned process of --nproc-per-node imports this module
    sys.exit(main())
