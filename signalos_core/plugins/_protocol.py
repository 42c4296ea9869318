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
    """Read one frame from ``fd``, blocking (worker side: the host owns the deadline)."""
    header = _read_exact(fd, HEADER.size)
    (size,) = HEADER.unpack(header)
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the {max_size}-byte cap", "too_large", size)
    return _read_exact(fd, size)


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise FrameError("the other side closed the pipe", "eof")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame_deadline(fd: int, max_size: int, deadline: float, poller: select.poll) -> bytes:
    """Read one frame from a non-blocking ``fd`` before ``deadline`` (``time.monotonic()`` seconds).

    ``poller`` has ``fd`` registered for reading. Raises :class:`FrameError` (eof, too_large, timeout).
    """
    buffer = bytearray()
    needed = HEADER.size
    have_header = False
    while True:
        while len(buffer) < needed:
            try:
                chunk = os.read(fd, max(needed - len(buffer), 65536) if have_header else needed - len(buffer))
            except BlockingIOError:
                remaining_ms = (deadline - time.monotonic()) * 1000.0
                ready = remaining_ms > 0 and poller.poll(int(remaining_ms) + 1)
                if not ready and time.monotonic() >= deadline:
                    raise FrameError("no reply before the deadline", "timeout") from None
                continue
            if not chunk:
                raise FrameError("the worker closed its reply pipe", "eof")
            buffer += chunk
        if have_header:
            if len(buffer) > needed:
                raise FrameError("the worker wrote more than one frame", "trailing", len(buffer))
            return bytes(buffer[HEADER.size :])
        (size,) = HEADER.unpack_from(buffer)
        if size > max_size:
            raise FrameError(f"reply of {size} bytes exceeds the {max_size}-byte cap", "too_large", size)
        have_header = True
        needed = HEADER.size + size
