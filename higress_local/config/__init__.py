"""hlocal.yaml: loaded, interpolated and validated into typed, immutable models."""
