"""validate: methods, paths, headers and route regexes refused before http.client or Envoy chokes on them."""

from __future__ import annotations

import pytest

from higress_local.config import validate
from higress_local.errors import ConfigError
from higress_local.probe.send import send_request
from higress_local.state import StackState


@pytest.mark.parametrize("method", ["GET", "get", "PURGE", "M-SEARCH", "X_CUSTOM"])
def test_token_methods_pass(method: str) -> None:
    assert validate.check_method(method) == method


@pytest.mark.parametrize("method", ["GET\r\n", "GET /x", "", "GÉT", "G\0T", "(GET)"])
def test_other_methods_are_refused(method: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate.check_method(method, "METHOD")
    assert caught.value.message == f"METHOD: {method!r} is not a valid HTTP method"
    assert "RFC 9110" in caught.value.hint and caught.value.exit_code == 2


@pytest.mark.parametrize("path", ["/", "/api/get?x=1&y=%20", "/a/b#frag", "/~user/!$&'()*+,;=:@"])
def test_visible_ascii_paths_pass(path: str) -> None:
    assert validate.check_path(path) == path


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("api", "'api' must start with /"),
        ("/a b", "'/a b' contains a space at position 2"),
        ("/a\r\nx: y", "contains CR (\\r) at position 2"),
        ("/a\0", "contains NUL (\\0) at position 2"),
        ("/\x7f", "contains the control character U+007F at position 1"),
        ("/caf\u00e9", "contains 'é' (U+00E9) at position 4"),
    ],
)
def test_bad_paths_are_refused_naming_the_character(path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate.check_path(path, "PATH")
    assert caught.value.message.startswith("PATH: ") and problem in caught.value.message


@pytest.mark.parametrize(("name", "value"), [("x-user", "alice"), ("X_Odd.Name~1", "a, b; q=1"),
                                             ("x-latin", "caf\u00e9"), ("x-tab", "a\tb"), ("x-empty", "")])
def test_good_headers_pass(name: str, value: str) -> None:
    validate.check_header(name, value)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("x y", "1", "header name 'x y' contains a space"),
        ("x:y", "1", "header name 'x:y' contains ':' (U+003A)"),
        ("x\r\ny", "1", "header name 'x\\r\\ny' contains CR (\\r)"),
        ("", "1", "header name '' is empty"),
        ("\u00e9", "1", "header name 'é' contains 'é' (U+00E9)"),
        ("x-a", "1\r\nx-b: 2", "the value of header 'x-a' contains CR (\\r)"),
        ("x-a", "1\nx-b: 2", "the value of header 'x-a' contains LF (\\n)"),
        ("x-a", "a\0b", "the value of header 'x-a' contains NUL (\\0)"),
        ("x-a", "a\x1bb", "the value of header 'x-a' contains the control character U+001B"),
        ("x-a", "\u20ac5", "the value of header 'x-a' contains '€' (U+20AC), which HTTP/1.1 cannot carry (latin-1 only)"),
    ],
)
def test_bad_headers_are_refused_naming_where_and_why(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate.check_header(name, value, "probes[0].request.headers.x")
    assert caught.value.message == f"probes[0].request.headers.x: {problem}"
    assert caught.value.hint


@pytest.mark.parametrize("regex", ["^/v[0-9]+/.*", "/(?i)users/[^/]+", "/(?P<id>\\d+)", "/a|/b"])
def test_regexes_re2_accepts_pass(regex: str) -> None:
    assert validate.check_regex(regex) == regex


@pytest.mark.parametrize(
    ("regex", "problem"),
    [
        ("/(a)\\1", "is not a regex Envoy accepts (RE2: invalid escape sequence: \\1)"),
        ("/(?=x)", "is not a regex Envoy accepts (RE2: invalid perl operator: (?=)"),
        ("/(?<!x)y", "is not a regex Envoy accepts (RE2: invalid perl operator: (?<!)"),
        ("/a\\Z", "is not a regex Envoy accepts (RE2: invalid escape sequence: \\Z)"),
        ("(", "is not a regex Envoy accepts (RE2: missing ): ()"),
        # Envoy's own verdict on this one (envoy --mode validate): "RE2 program size of 104 > max
        # program size of 100 set for the error level threshold".
        ("/[a-z]{1,50}", "is too complex for Envoy (RE2 program size 104 > 100)"),
    ],
)
def test_regexes_python_accepts_but_envoy_refuses(regex: str, problem: str, capfd) -> None:
    with pytest.raises(ConfigError) as caught:
        validate.check_regex(regex, "hlocal.yaml: routes[0].regex")
    assert caught.value.message == f"hlocal.yaml: routes[0].regex: {regex!r} {problem}"
    assert capfd.readouterr().err == ""  # RE2's own error logging is off: the user sees one error line


def _state() -> StackState:
    """A state for a stack that is not there: validation must refuse before any connection is tried."""
    return StackState.__new__(StackState)


@pytest.mark.parametrize(
    ("method", "path", "headers", "problem"),
    [
        ("GET\r\n", "/", [], "request method: 'GET\\r\\n' is not a valid HTTP method"),
        ("GET", "/a b", [], "request path: '/a b' contains a space"),
        ("GET", "/\u00e9", [], "request path: '/é' contains 'é'"),
        ("GET", "x", [], "request path: 'x' must start with /"),
        ("GET", "/", [("x-a", "1\r\nx-b: 2")], "request header: the value of header 'x-a' contains CR"),
        ("GET", "/", [("x-a", "\u20ac")], "which HTTP/1.1 cannot carry (latin-1 only)"),
        ("GET", "/", [("bad name", "1")], "request header: header name 'bad name' contains a space"),
    ],
)
def test_send_request_refuses_bad_input_before_connecting(method, path, headers, problem) -> None:
    with pytest.raises(ConfigError) as caught:
        send_request(_state(), method, path, headers)
    assert problem in caught.value.message
