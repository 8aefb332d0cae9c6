"""Non-blocking socket reads and writes that keep the GIL: no thread switch for a call that cannot wait.

Every system call CPython makes for us releases the GIL and takes it back
afterwards.  With other threads waiting for the GIL, "takes it back" means
waiting for one of them to give it up: a ``recv`` of bytes that are already
there takes a couple of microseconds, but getting the GIL back costs a
context switch or two -- measured on the threaded mode with ``perf stat``:
about five context switches per hello request with ``os.read``/``os.write``,
about three with these.  A call that cannot block has no reason to let
another thread in, so these make it through :mod:`ctypes`' ``PyDLL``, which
(unlike ``CDLL``) keeps the GIL, with ``MSG_DONTWAIT`` so that it never
blocks whatever the socket's mode.

Used only where the bytes are known to be there (the poll or selector just
said so) or the response is likely to fit the socket buffer; a call that
would block returns "nothing" and the caller falls back to its ordinary,
GIL-releasing, timed call.  Where ``ctypes`` or the C library cannot be
loaded, the same functions fall back to ``os.read``/``os.write``-style calls.
"""

from __future__ import annotations

import errno
import os
import socket
import threading

RECV_SIZE = 64 * 1024
SEND_MAX = 1 << 30  # bytes per call (callers handle a partial write)
_WOULD_BLOCK = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)
_RECV_FLAGS = socket.MSG_DONTWAIT
_SEND_FLAGS = socket.MSG_DONTWAIT | getattr(socket, "MSG_NOSIGNAL", 0)

try:
    import ctypes

    _libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the call keeps the GIL
    # No argtypes: checking each argument against declared types costs more than the system
    # call's own overhead.  ints pass as C ints, bytes and the buffer as pointers, and the two
    # size_t lengths are passed as c_size_t explicitly.
    _RECV_LENGTH = ctypes.c_size_t(RECV_SIZE)
    _c_recv = _libc.recv
    _c_recv.restype = ctypes.c_ssize_t
    _c_send = _libc.send
    _c_send.restype = ctypes.c_ssize_t
except (ImportError, OSError, AttributeError):  # no ctypes, or no C library to call into
    ctypes = None  # type: ignore[assignment]

_buffers = threading.local()  # one receive buffer per thread, reused for every call


def recv_now(fd: int) -> bytes:
    """Up to ``RECV_SIZE`` bytes already received on ``fd`` (b"" at its end); BlockingIOError if none."""
    if ctypes is None:
        return os.read(fd, RECV_SIZE)
    try:
        buffer, view = _buffers.buffer
    except AttributeError:
        buffer = ctypes.create_string_buffer(RECV_SIZE)
        buffer, view = _buffers.buffer = buffer, memoryview(buffer)
    n = _c_recv(fd, buffer, _RECV_LENGTH, _RECV_FLAGS)
    if n < 0:
        _raise_errno()
    return bytes(view[:n])


def send_now(fd: int, data: bytes) -> int:
    """Write what the socket buffer takes now: the number of bytes written, 0 if none fit."""
    try:
        if ctypes is None:
            return os.write(fd, data)
        data = bytes(data)  # the same object when it is bytes already
        n = _c_send(fd, data, ctypes.c_size_t(min(len(data), SEND_MAX)), _SEND_FLAGS)
        if n < 0:
            _raise_errno()
        return n
    except BlockingIOError:
        return 0


def _raise_errno() -> None:
    code = ctypes.get_errno()
    if code in _WOULD_BLOCK:
        raise BlockingIOError(code, os.strerror(code))
    raise OSError(code, os.strerror(code))
