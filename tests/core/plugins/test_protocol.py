"""Framing, the worker loop run in-process over real pipes, and the seccomp program."""

from __future__ import annotations

import contextlib
import os
import select
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signalos_core.plugins import _protocol, _worker
from signalos_core.plugins._landlock import landlock_abi
from signalos_core.plugins._protocol import (
    Call,
    FrameError,
    Reply,
    encode_frame,
    read_frame_blocking,
    read_frame_deadline,
)
from signalos_core.plugins._seccomp import SECCOMP_SUPPORTED, build_filter
from signalos_core.plugins._worker import KIND_METHODS, load_plugin, serve


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def _poller(fd: int) -> select.poll:
    os.set_blocking(fd, False)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return poller


def test_frames_round_trip(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    encoder = msgspec.msgpack.Encoder()
    os.write(write_fd, encode_frame(encoder, Call(7, "parse", {"text": "hi"})))
    body = read_frame_blocking(read_fd, 1024)
    assert msgspec.msgpack.decode(body, type=Call) == Call(7, "parse", {"text": "hi"})
    os.write(write_fd, encode_frame(encoder, Reply(7, True, [1, 2])))
    body = read_frame_deadline(read_fd, 1024, time.monotonic() + 1, _poller(read_fd))
    assert msgspec.msgpack.decode(body, type=Reply).result == [1, 2]


def test_deadline_reader_refuses_oversize_trailing_eof_and_silence(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    poller = _poller(read_fd)
    with pytest.raises(FrameError) as caught:
        read_frame_deadline(read_fd, 1024, time.monotonic() + 0.05, poller)
    assert caught.value.reason == "timeout"
    os.write(write_fd, struct.pack(">I", 10_000))
    with pytest.raises(FrameError) as caught:
        read_frame_deadline(read_fd, 1024, time.monotonic() + 1, poller)
    assert (caught.value.reason, caught.value.size) == ("too_large", 10_000)
    os.write(write_fd, struct.pack(">I", 2) + b"abEXTRA")
    with pytest.raises(FrameError) as caught:
        read_frame_deadline(read_fd, 1024, time.monotonic() + 1, poller)
    assert caught.value.reason == "trailing"
    os.write(write_fd, struct.pack(">I", 2) + b"a")
    os.close(write_fd)
    with pytest.raises(FrameError) as caught:
        read_frame_deadline(read_fd, 1024, time.monotonic() + 1, poller)
    assert caught.value.reason == "eof"


def test_blocking_reader_handles_split_frames_and_refuses_two_at_once(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    frame = struct.pack(">I", 5000) + b"y" * 5000
    os.write(write_fd, frame[:2])
    later = threading.Timer(0.05, lambda: os.write(write_fd, frame[2:]))
    later.start()
    assert read_frame_blocking(read_fd, 10_000) == b"y" * 5000
    later.join()
    os.write(write_fd, struct.pack(">I", 1) + b"a" + struct.pack(">I", 1) + b"b")
    with pytest.raises(FrameError) as caught:
        read_frame_blocking(read_fd, 100)
    assert caught.value.reason == "trailing"
    os.write(write_fd, struct.pack(">I", 10))
    os.close(write_fd)
    with pytest.raises(FrameError) as caught:
        read_frame_blocking(read_fd, 100)
    assert caught.value.reason == "eof"


def test_blocking_reader_caps_and_eof(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, struct.pack(">I", 5000))
    with pytest.raises(FrameError, match="cap"):
        read_frame_blocking(read_fd, 100)
    os.close(write_fd)
    with pytest.raises(FrameError) as caught:
        read_frame_blocking(read_fd, 100)
    assert caught.value.reason == "eof"


class _Echo:
    def parse(self, request: Any) -> Any:
        if request == "boom":
            raise ValueError("bad input")
        if request == "object":
            return object()
        if request == "big":
            return "x" * 5000
        return request


def _serve_in_thread(methods: dict[str, Any]) -> tuple[int, int, threading.Thread]:
    to_worker_r, to_worker_w = os.pipe()
    from_worker_r, from_worker_w = os.pipe()
    thread = threading.Thread(
        target=serve,
        args=(to_worker_r, from_worker_w, methods),
        kwargs={"max_request": 1 << 16, "max_reply": 1024, "protocol": _protocol},
    )
    thread.start()
    return to_worker_w, from_worker_r, thread


def test_worker_loop_answers_errors_and_caps_replies() -> None:
    methods = {"parse": _Echo().parse, "self_test": lambda: True}
    send, receive, thread = _serve_in_thread(methods)
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(Reply)

    def call(method: str, payload: Any, call_id: int) -> Reply:
        os.write(send, encode_frame(encoder, Call(call_id, method, payload)))
        return decoder.decode(read_frame_blocking(receive, 1 << 20))

    assert call("parse", {"a": 1}, 1).result == {"a": 1}
    assert call("ping", "pong", 2).result == "pong"
    assert call("self_test", None, 3).result is True
    failed = call("parse", "boom", 4)
    assert (failed.ok, failed.error_type, failed.error) == (False, "ValueError", "bad input")
    assert call("parse", "object", 5).error_type == "UnencodableReply"
    assert call("parse", "big", 6).error_type == "ReplyTooLarge"
    assert call("nope", None, 7).error_type == "LookupError"
    os.write(send, struct.pack(">I", 3) + b"\xc1\xc1\xc1")  # not msgpack: answered as an error, loop goes on
    assert decoder.decode(read_frame_blocking(receive, 1 << 20)).ok is False
    os.close(send)
    thread.join(5)
    assert not thread.is_alive()
    os.close(receive)


def test_load_plugin_checks_required_methods(tmp_path: Any) -> None:
    (tmp_path / "good_mod_x.py").write_text("class P:\n    def parse(self, r):\n        return r\n")
    (tmp_path / "bad_mod_x.py").write_text("class P:\n    pass\nINSTANCE = P()\n")
    methods = load_plugin({"entry_point": "good_mod_x:P", "plugin_dir": str(tmp_path), "kind": "parser"})
    assert methods["parse"](1) == 1
    assert methods["self_test"]() is True
    with pytest.raises(TypeError, match="no method parse"):
        load_plugin({"entry_point": "bad_mod_x:INSTANCE", "plugin_dir": str(tmp_path), "kind": "parser"})
    assert set(KIND_METHODS) == {"parser", "strategy", "provider"}
    assert _worker._load_sibling("_protocol").HEADER.size == 4


@pytest.mark.skipif(not SECCOMP_SUPPORTED, reason="x86-64 only")
def test_seccomp_program_shape() -> None:
    closed = build_filter(allow_network=False, own_pid=1234)
    opened = build_filter(allow_network=True, own_pid=1234)
    assert len(closed) % 8 == 0
    assert len(closed) // 8 < 4096  # kernel limit on classic BPF programs
    assert len(opened) != len(closed)
    # The first instruction loads the architecture; the last one allows.
    assert struct.unpack("=HBBI", closed[:8]) == (0x20, 0, 0, 4)
    assert struct.unpack("=HBBI", closed[-8:]) == (0x06, 0, 0, 0x7FFF0000)


def test_landlock_is_available_here() -> None:
    # The sandbox requires it by default; the CI kernel has ABI >= 1.
    assert landlock_abi() >= 1


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40)
@given(_plain)
def test_any_plain_payload_survives_a_frame(payload: Any) -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, encode_frame(msgspec.msgpack.Encoder(), Call(1, "parse", payload)))
        assert msgspec.msgpack.decode(read_frame_blocking(read_fd, 1 << 16), type=Call).payload == payload
    finally:
        os.close(read_fd)
        os.close(write_fd)
