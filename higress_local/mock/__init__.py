"""Mock backend for hlocal: echoes or stubs requests, journals them, and serves a control API.

Standard library only, relative imports only: the docker runtime mounts this directory alone
into a plain python image as `hlocal_mock`, where the rest of higress_local does not exist.

Limits (each a command-line flag): a request body over `--max-body` (64 MiB) is answered 413 with
`X-Hlocal-Mock-Error: body-too-large` and a JSON error naming the limit; of each body the echo reply
and the journal keep the first `--keep-body` bytes (1 MiB), marking a longer one `body_truncated`
with its `body_size` and `body_sha256`; the journal keeps at most `--journal-limit` requests and
`--journal-max-bytes` (64 MiB), dropping the oldest. The control API answers only loopback Host
headers and, with `--token-file`, needs that token on every endpoint but health.
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
