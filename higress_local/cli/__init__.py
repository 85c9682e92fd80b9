"""The `hlocal` command line: Click commands and what they print."""
