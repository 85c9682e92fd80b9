"""`python -m higress_local` runs the hlocal command line."""

from .cli import main

main(prog_name="hlocal")
