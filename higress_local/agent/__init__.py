"""Reaching the reload agent: its wire format, and starting, finding and stopping it."""
