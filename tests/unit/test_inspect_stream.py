"""The inspector's tap stream: decoding the admin session's bytes and telling the two taps apart."""

from __future__ import annotations

import json

import pytest

from higress_local.inspect.tapstream import SegmentDecoder, StreamSides, tap_config


def test_the_decoder_returns_whole_objects_and_keeps_a_split_tail() -> None:
    text = json.dumps({"a": "é"}, indent=1, ensure_ascii=False) + "\n" + json.dumps({"b": 2}, indent=1)
    data = text.encode()
    cut = data.index("é".encode()) + 1  # inside the two bytes of é, inside the first object
    decoder = SegmentDecoder()
    assert decoder.feed(data[:cut]) == []
    assert decoder.feed(data[cut:-3]) == [{"a": "é"}]
    assert decoder.feed(data[-3:]) == [{"b": 2}]


def _sides(kinds: list[str]) -> list[str]:
    sides = StreamSides()
    return [sides.side(kind) for kind in kinds]


@pytest.mark.parametrize("kinds, expected", [
    # a plugin that does not read the body: each chunk passes client tap, then upstream tap
    (["request_headers", "request_headers", "request_body_chunk", "request_body_chunk", "request_body_chunk",
      "request_body_chunk", "response_headers", "response_headers", "response_body_chunk", "response_body_chunk"],
     ["client", "upstream", "client", "upstream", "client", "upstream", "upstream", "client", "upstream", "client"]),
    # a plugin that holds the headers until it has the whole body (wasm-go reading the body)
    (["request_headers", "request_body_chunk", "request_body_chunk", "request_headers", "request_body_chunk",
      "response_headers", "response_body_chunk", "response_headers", "response_body_chunk"],
     ["client", "client", "client", "upstream", "upstream", "upstream", "upstream", "client", "client"]),
    # a plugin's local reply: the upstream tap never saw the request, so not the response either
    (["request_headers", "response_headers", "response_body_chunk"], ["client", "client", "client"]),
])
def test_which_tap_sent_a_segment_follows_from_their_order(kinds, expected) -> None:
    assert _sides(kinds) == expected


def test_the_sampled_session_matches_one_request_id_digit_on_both_taps() -> None:
    every = tap_config("hlocal.tap", sampled=False, body_bytes=10)["tap_config"]
    assert every["match"] == {"any_match": True}
    assert every["output_config"]["sinks"] == [{"format": "JSON_BODY_AS_STRING", "streaming_admin": {}}]
    sampled = tap_config("hlocal.tap", sampled=True, body_bytes=10)["tap_config"]["match"]
    header = sampled["http_request_headers_match"]["headers"][0]
    assert header["name"] == "x-request-id" and header["string_match"] == {"suffix": "0"}
