"""Envoy's two tap filters, streamed to the collector over Envoy's admin port: no file per request.

The taps are rendered with `admin_config` (render/envoy.py `render_tap_filter`). While no session is
attached a tap matches nothing; the collector attaches with `POST /tap` and the taps' config_id, and
Envoy streams every matched stream's segments down that connection as the same
`HttpStreamedTraceSegment` JSON a file tap writes (envoyproxy/envoy
docs/root/configuration/http/http_filters/tap_filter.rst, "Admin handler"). Envoy allows one
attached session at a time but applies it to every filter registered under its config_id
(source/extensions/common/tap/admin.cc, `AdminHandler::handler`), so both taps share one id and one
session, and `StreamSides` tells from their order which tap sent a segment. Closing the
connection detaches the session.

Under load the collector attaches with a match on the last hex digit(s) of `x-request-id` instead of
every stream: the same match on both taps, so a sampled stream's two halves still pair.
"""

from __future__ import annotations

import codecs
import http.client
import json
import socket
import threading
from collections import deque
from typing import Any, Callable

TAP_CONFIG_ID = "hlocal.tap"  # render/envoy.py renders both taps with it
# x-request-id is a random UUID: its last hex digit is "0" for 1 stream in 16, its last two "00" for
# 1 in 256. The sampling levels, lightest first (sampling.py picks one by the request rate).
SAMPLE_SUFFIXES = ("0", "00")


def sample_note(suffix: str) -> str:
    """What a sampled record and the page say of the sample."""
    return f"1 in {16 ** len(suffix)} (x-request-id ending in {suffix}), under load"
MAX_PENDING_TEXT = 32 * 1024 * 1024  # an unparsed tail larger than this: reattach rather than grow
RETRY_S = 0.1  # between attempts to attach: Envoy restarting, or the last session not yet gone


def tap_config(config_id: str, suffix: str | None, body_bytes: int) -> dict[str, Any]:
    """The body of `POST /tap` (envoy.admin.v3.TapRequest): streamed segments, bodies as text; with a
    `suffix`, only the streams whose x-request-id ends so."""
    match: dict[str, Any] = {"any_match": True}
    if suffix:
        match = {"http_request_headers_match": {"headers": [
            {"name": "x-request-id", "string_match": {"suffix": suffix}}]}}
    return {"config_id": config_id, "tap_config": {"match": match, "output_config": {
        "streaming": True, "max_buffered_rx_bytes": body_bytes, "max_buffered_tx_bytes": body_bytes,
        "sinks": [{"format": "JSON_BODY_AS_STRING", "streaming_admin": {}}]}}}


class SegmentDecoder:
    """Concatenated JSON objects from a byte stream, in pieces: complete objects out, the tail kept."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._json = json.JSONDecoder()
        self._text = ""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._text += self._utf8.decode(data)
        out, index, text = [], 0, self._text
        while True:
            while index < len(text) and text[index].isspace():
                index += 1
            if index >= len(text):
                break
            try:
                item, index = self._json.raw_decode(text, index)
            except ValueError:  # the object is not complete yet
                break
            if isinstance(item, dict):
                out.append(item)
        self._text = text[index:]
        if len(self._text) > MAX_PENDING_TEXT:
            raise OSError("the tap stream sent an object too large to parse")
        return out


class StreamSides:
    """Which tap sent each segment of one stream, from the order Envoy emits them in.

    One worker thread runs a stream and posts its segments in order to the main thread, which writes
    them to the session in that order. Decoding runs client tap → plugins → upstream tap, encoding the
    reverse, so in each direction the first headers are the first tap's and the second the other's.
    Body chunks (and trailers) before the second tap's headers are the first tap's. After them: when
    the first tap already saw body (a plugin held the headers until it had the body, as wasm-go does
    for a plugin that reads it) the rest is the second tap's; when not (the body passes through
    chunk by chunk), they alternate. A plugin that lets the headers through but holds the body alone
    breaks that rule (its chunks may be shown on the wrong side). A response with no upstream request
    headers before it is a plugin's local reply: only the client tap sees it.
    """

    def __init__(self) -> None:
        self.headers = {"request": 0, "response": 0}
        self.early = {"request": False, "response": False}  # first tap saw body before the second's headers
        self.after = {"request": 0, "response": 0}  # body chunks and trailers after the second tap's headers

    def side(self, kind: str) -> str:
        """"client" or "upstream" for a segment of `kind` (request_headers, response_body_chunk, ...)."""
        direction, _, part = kind.partition("_")
        first, second = ("client", "upstream") if direction == "request" else ("upstream", "client")
        if direction == "response" and self.headers["request"] < 2:
            return "client"
        if part == "headers":
            self.headers[direction] += 1
            return first if self.headers[direction] == 1 else second
        if self.headers[direction] <= 1:
            self.early[direction] = True
            return first
        if self.early[direction]:
            return second
        self.after[direction] += 1
        return first if self.after[direction] % 2 == 1 else second


class AdminTap(threading.Thread):
    """The taps' admin session, kept attached (again after Envoy restarts or `sample()` changes):
    each segment goes to `out` as (time received, segment)."""

    def __init__(self, admin: tuple[str, int], body_bytes: int, out: deque, clock: Callable[[], float],
                 config_id: str = TAP_CONFIG_ID) -> None:
        super().__init__(name="hlocal-tap", daemon=True)
        self.admin, self.config_id, self.body_bytes = admin, config_id, body_bytes
        self.out, self.clock = out, clock
        self.suffix: str | None = None  # attached to a sample: the x-request-id suffix; None: every stream
        self.enabled = threading.Event()  # capture on: clear, the session is closed and not attached again
        self.enabled.set()
        self.attached = threading.Event()
        self.last_error: str | None = None
        self._stopping = threading.Event()
        self._sock: socket.socket | None = None

    @property
    def sampled(self) -> bool:
        return self.suffix is not None

    def sample(self, suffix: str | None) -> None:
        """Reattach with that sampling match (None: every stream); segments of streams in flight may be cut."""
        if suffix != self.suffix:
            self.suffix = suffix
            self._hang_up()

    def switch(self, on: bool) -> None:
        """Capture on (attach) or off (detach: Envoy's taps then match nothing and cost next to nothing)."""
        if on:
            self.enabled.set()
        else:
            self.enabled.clear()
            self._hang_up()

    def stop(self) -> None:
        self._stopping.set()
        self._hang_up()

    def run(self) -> None:
        while not self._stopping.is_set():
            if not self.enabled.wait(RETRY_S):  # off: wait to be switched on (or stopped)
                continue
            try:
                self._session()
                continue  # hung up by sample() (attach again at once) or by Envoy (then it fails next)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self.attached.clear()
            self._stopping.wait(RETRY_S)  # before attaching again; ends at once on stop()

    def _session(self) -> None:
        # No timeout: a session is quiet for as long as no request comes; stop() and sample() end a
        # blocked read by shutting the socket down, and Envoy going away closes it.
        conn = http.client.HTTPConnection(*self.admin)
        try:
            conn.connect()
            sock = self._sock = conn.sock
            body = json.dumps(tap_config(self.config_id, self.suffix, self.body_bytes))
            conn.request("POST", "/tap", body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                raise OSError(f"POST /tap {self.config_id}: {response.status} {response.read(300)!r}")
            self.attached.set()
            decoder = SegmentDecoder()
            while self._sock is sock and not self._stopping.is_set() and self.enabled.is_set():
                data = response.read1(65536)
                if not data:
                    return
                now = self.clock()
                self.out.extend((now, segment) for segment in decoder.feed(data))
        finally:
            conn.close()

    def _hang_up(self) -> None:
        """Close the session's socket: the blocked read returns and run() attaches again (or stops)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
