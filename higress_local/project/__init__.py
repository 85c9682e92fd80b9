"""Commands that scaffold, render, ship or list projects rather than run a stack."""
