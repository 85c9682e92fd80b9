"""Mock backend for hlocal: echoes or stubs requests, journals them, and serves a control API.

Standard library only, relative imports only: the docker runtime mounts this directory alone
into a plain python image as `hlocal_mock`, where the rest of higress_local does not exist.
"""

from .client import MockClient, MockClientError
from .server import MockServer
from .stubs import StubConfigError, load_config

__all__ = ["MockClient", "MockClientError", "MockServer", "StubConfigError", "load_config"]
