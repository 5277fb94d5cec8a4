"""``python -m curator`` is the same as the ``curator`` console script."""

from curator.cli import main

main()
