"""Mock backend for hlocal: echoes or stubs requests, journals them, and serves a control API.

Standard library only, relative imports only: the docker runtime mounts this directory alone
into a plain python image as `hlocal_mock`, where the rest of higress_local does not exist.
"""

import importlib

__all__ = ["MockClient", "MockClientError", "MockServer", "StubConfigError", "load_config"]
_HOME = {"MockClient": "client", "MockClientError": "client", "MockServer": "server",
         "StubConfigError": "stubs", "load_config": "stubs"}


def __getattr__(name: str):
    """Imported on first use: validating stubs (hlocal.yaml) must not pull in the HTTP server."""
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(name)
