"""Validators for what hlocal puts on the wire or hands to Envoy: methods, paths, headers, regexes.

Each raises ConfigError naming `where` (a key path such as `probes[0].request.headers.x-a`, or a
command-line option) and what is wrong, before http.client or Envoy fail on it less clearly.
"""

from __future__ import annotations

import re
from typing import Iterable

from ..errors import ConfigError

# RFC 9110 section 5.6.2: token = 1*tchar; methods (section 9.1) and field names (5.1) are tokens.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 section 5.5: a field value is VCHAR, obs-text (0x80-0xFF), SP and HTAB; any other
# control character (CR and LF above all: they would start a new header line) is refused.
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A request target on the wire: visible ASCII only (http.client refuses the rest with a traceback).
_BAD_PATH_CHAR = re.compile(r"[^\x21-\x7e]")
_TOKEN_HINT = "a token: letters, digits and !#$%&'*+-.^_`|~ (RFC 9110)"

# Envoy refuses a regex whose RE2 program is larger than the runtime key
# `re2.max_program_size.error_level`, 100 unless set (envoyproxy/envoy source/common/common/regex.cc,
# CompiledGoogleReMatcher); hlocal's rendered bootstrap does not set it.
ENVOY_RE2_MAX_PROGRAM_SIZE = 100


def check_method(method: str, where: str = "method") -> str:
    """An HTTP method must be a token (GET, POST, PURGE ...)."""
    if not _TOKEN.fullmatch(method):
        raise ConfigError(f"{where}: {method!r} is not a valid HTTP method", f"a method is {_TOKEN_HINT}")
    return method


def check_path(path: str, where: str = "path") -> str:
    """A request path starts with / and is visible ASCII (no spaces, control or non-ASCII characters)."""
    if not path.startswith("/"):
        raise ConfigError(f"{where}: {path!r} must start with /", "for example /api/get?x=1")
    bad = _BAD_PATH_CHAR.search(path)
    if bad is not None:
        raise ConfigError(f"{where}: {path!r} contains {_describe(bad.group())} at position {bad.start()}",
                          "percent-encode it (a space is %20, é is %C3%A9)")
    return path


def check_header(name: str, value: str, where: str = "header") -> None:
    """A header name must be a token; a value must be latin-1 without CR, LF, NUL or other controls."""
    if not _TOKEN.fullmatch(name):
        bad = next((c for c in name if not _TOKEN.fullmatch(c)), "")
        why = "is empty" if not name else f"contains {_describe(bad)}"
        raise ConfigError(f"{where}: header name {name!r} {why}", f"a header name is {_TOKEN_HINT}")
    bad_char = _BAD_VALUE_CHAR.search(value)
    if bad_char is not None:
        raise ConfigError(f"{where}: the value of header {name!r} contains {_describe(bad_char.group())}",
                          "a header value is one line of text; send several values as repeated headers")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError as exc:
        char = value[exc.start]
        raise ConfigError(f"{where}: the value of header {name!r} contains {_describe(char)}, "
                          "which HTTP/1.1 cannot carry (latin-1 only)",
                          "percent-encode or base64 it, as the plugin expects") from None


def check_request(method: str, path: str, headers: Iterable[tuple[str, str]], where: str = "request") -> None:
    """Everything send_request puts on the request line and in the headers."""
    check_method(method, f"{where} method")
    check_path(path, f"{where} path")
    for name, value in headers:
        check_header(name, value, f"{where} header")


def check_regex(pattern: str, where: str = "regex") -> str:
    """A regex Envoy accepts: RE2 syntax (no backreferences or lookaround) within Envoy's program size."""
    import re2  # google-re2: the engine Envoy uses, so the verdict is Envoy's

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line to stderr besides ours
    try:
        size = re2.compile(pattern, options).programsize
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ConfigError(f"{where}: {pattern!r} is not a regex Envoy accepts (RE2: {detail})",
                          "Envoy uses RE2 syntax: no backreferences (\\1) or lookaround ((?=, (?!, (?<=); "
                          "see https://github.com/google/re2/wiki/Syntax") from None
    if size > ENVOY_RE2_MAX_PROGRAM_SIZE:
        raise ConfigError(f"{where}: {pattern!r} is too complex for Envoy "
                          f"(RE2 program size {size} > {ENVOY_RE2_MAX_PROGRAM_SIZE})",
                          "simplify it: counted repeats like {1,50} multiply the size; [a-z]+ is smaller")
    return pattern


def _describe(char: str) -> str:
    """'CR (\\r)', 'a space', "'é' (U+00E9)"."""
    names = {"\r": "CR (\\r)", "\n": "LF (\\n)", "\0": "NUL (\\0)", " ": "a space", "\t": "a tab"}
    if char in names:
        return names[char]
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"the control character U+{ord(char):04X}"
    return f"{char!r} (U+{ord(char):04X})"
