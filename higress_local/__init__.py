"""hlocal: run Higress wasm-go plugins locally behind a real gateway."""

__version__ = "0.1.0"
