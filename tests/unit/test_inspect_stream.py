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


def test_the_sampled_session_matches_the_request_id_suffix_on_both_taps() -> None:
    every = tap_config("hlocal.tap", suffix=None, body_bytes=10)["tap_config"]
    assert every["match"] == {"any_match": True}
    assert every["output_config"]["sinks"] == [{"format": "JSON_BODY_AS_STRING", "streaming_admin": {}}]
    sampled = tap_config("hlocal.tap", suffix="00", body_bytes=10)["tap_config"]["match"]
    header = sampled["http_request_headers_match"]["headers"][0]
    assert header["name"] == "x-request-id" and header["string_match"] == {"suffix": "00"}


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_collector_samples_under_load_and_counts_what_it_left_out(tmp_path) -> None:
    from higress_local.inspect.collector import Collector
    from higress_local.inspect.store import Store

    clock = _Clock()
    collector = Collector(("127.0.0.1", 9), Store(tmp_path / "requests"), tmp_path / "gateway.log",
                          tmp_path / "access.log", {}, clock=clock)  # not started: no session, no thread

    def tick(requests: int, captured: set[str] = frozenset()) -> None:
        clock.now += 0.05
        for request_id in captured:  # the taps showed these requests' headers
            collector.capture.saw(request_id)
        fresh = [f"r{clock.now}-{i}" for i in range(requests)]
        fresh += list(captured)
        collector.capture.observe(clock.now, fresh)

    tick(1, {"seen"})  # interactive: every request, none left out
    assert not collector.tap.sampled and collector.capture.not_captured == 1
    for _ in range(10):  # 20 a tick: 400 requests a second
        tick(20)
    assert collector.tap.suffix == "0" and collector.stats()["mode"] == "sampled"
    assert collector.stats()["sample"].startswith("1 in 16 ")
    assert collector.capture.not_captured == 201  # every request whose id the taps never showed
    for _ in range(70):  # quiet for 3.5 s: back to every request
        tick(0)
    assert not collector.tap.sampled
    for _ in range(10):  # 100 a tick: 2,000 requests a second, sampled at 1 in 256
        tick(100)
    assert collector.tap.suffix == "00" and collector.stats()["sample"].startswith("1 in 256 ")
    collector.write_stats(clock.now)
    assert collector.store.capture_stats()["not_captured"] == 1201


def test_the_sampling_level_rises_at_once_and_falls_only_well_below() -> None:
    from higress_local.inspect.sampling import level_suffix

    assert level_suffix(50, 50, None) is None
    assert level_suffix(150, 10, None) == "0"  # a burst: up although the longer average is low
    assert level_suffix(5000, 10, None) == "00"  # straight to 1 in 256
    assert level_suffix(1000, 1000, "00") == "00"  # between: stays
    assert level_suffix(500, 500, "00") == "0"  # below 640 a second: 1 in 16
    assert level_suffix(60, 60, "0") == "0" and level_suffix(20, 20, "0") is None
    assert level_suffix(20, 20, "00") is None  # all the way down when the load is gone
