"""Adapting Higress-built modules so stock Envoy runs them (host functions rewritten in a copy)."""
