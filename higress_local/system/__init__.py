"""This machine: running programs, ports, waiting, docker preflight and safe file access."""
