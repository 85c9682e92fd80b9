"""`python -m higress_local` runs the hlocal command line (through the entry point: see entry.py)."""

from .entry import main

main()
