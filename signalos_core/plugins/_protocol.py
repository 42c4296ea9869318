"""Wire protocol between the host and a plugin worker: length-prefixed msgpack frames over pipes.

A frame is a 4-byte big-endian length followed by that many bytes of msgpack. Both sides cap the length
before reading the body, so a hostile worker cannot make the host allocate a huge buffer. This module imports
only the standard library and msgspec because the worker loads it by path before locking itself down.
"""

from __future__ import annotations

import os
import select
import struct
import time
from typing import Any

import msgspec

__all__ = ["HEADER", "Call", "FrameError", "Reply", "encode_frame", "read_frame_blocking", "read_frame_deadline"]

HEADER = struct.Struct(">I")
#: Size of the first read of a frame: small replies arrive whole, and os.read allocates what it is asked for.
_FIRST_READ = 4096


class Call(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Host -> worker: call ``method`` with ``payload``; ``id`` increases per call."""

    id: int
    method: str
    payload: Any = None


class Reply(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Worker -> host. ``id`` 0 is the start-up handshake. ``cpu`` is the worker's CPU seconds so far."""

    id: int
    ok: bool
    result: Any = None
    error_type: str = ""
    error: str = ""
    cpu: float = 0.0


class FrameError(Exception):
    """A frame could not be read. ``reason``: eof, too_large, timeout."""

    def __init__(self, message: str, reason: str, size: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.size = size


def encode_frame(encoder: msgspec.msgpack.Encoder, message: Any) -> bytearray:
    """Encode ``message`` into a frame (header written in place, no extra copy)."""
    buffer = bytearray(HEADER.size)
    encoder.encode_into(message, buffer, HEADER.size)
    HEADER.pack_into(buffer, 0, len(buffer) - HEADER.size)
    return buffer


def read_frame_blocking(fd: int, max_size: int) -> bytes:
    """Read one frame from ``fd``, blocking (worker side: the host owns the deadline).

    One ``read`` usually brings header and body together; anything past the frame is a protocol error
    (the host never sends a second call before the reply to the first).
    """
    buffer = bytearray(os.read(fd, _FIRST_READ))
    if not buffer:
        raise FrameError("the other side closed the pipe", "eof")
    while len(buffer) < HEADER.size:
        buffer += _read_some(fd, HEADER.size - len(buffer))
    (size,) = HEADER.unpack_from(buffer)
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the {max_size}-byte cap", "too_large", size)
    total = HEADER.size + size
    while len(buffer) < total:
        buffer += _read_some(fd, min(total - len(buffer), 1 << 20))
    if len(buffer) > total:
        raise FrameError("more than one frame in flight", "trailing", len(buffer))
    return bytes(buffer[HEADER.size :])


def _read_some(fd: int, size: int) -> bytes:
    chunk = os.read(fd, size)
    if not chunk:
        raise FrameError("the other side closed the pipe", "eof")
    return chunk


def read_frame_deadline(fd: int, max_size: int, deadline: float, poller: select.poll) -> bytes:
    """Read one frame from a non-blocking ``fd`` before ``deadline`` (``time.monotonic()`` seconds).

    ``poller`` has ``fd`` registered for reading. The size in the header is checked against ``max_size``
    before the body is read. Raises :class:`FrameError` (eof, too_large, trailing, timeout).
    """
    buffer = bytearray()
    total = 0  # 0 until the header is in
    while True:
        if not total and len(buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(buffer)
            if size > max_size:
                raise FrameError(f"reply of {size} bytes exceeds the {max_size}-byte cap", "too_large", size)
            total = HEADER.size + size
        if total and len(buffer) >= total:
            if len(buffer) > total:
                raise FrameError("the worker wrote more than one frame", "trailing", len(buffer))
            return bytes(buffer[HEADER.size :])
        remaining_ms = (deadline - time.monotonic()) * 1000.0
        if remaining_ms <= 0:
            raise FrameError("no reply before the deadline", "timeout")
        if not poller.poll(int(remaining_ms) + 1):
            continue
        try:
            # Small first read: os.read allocates the full size asked for, every call.
            chunk = os.read(fd, min(total - len(buffer), 1 << 20) if total else _FIRST_READ)
        except BlockingIOError:  # pragma: no cover - poll said readable; a spurious wake-up
            continue
        if not chunk:
            raise FrameError("the worker closed its reply pipe", "eof")
        buffer += chunk
