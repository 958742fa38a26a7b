"""`python -m interfaces.cli` runs the `chronicle` command."""

from interfaces.cli.main import main

main()
