"""``python -m driftd.cli``: the same as the ``driftd`` script."""

from driftd.cli.main import main

main()
