"""The article's C calls, made on a pyzmq socket through ctypes, so a lesson can show what
C code gets back where pyzmq would raise: `zmq_recv`'s return value and `errno`.

pyzmq's own extension module is linked against the libzmq it ships, so its symbols are the
ones the sockets use (a second copy of libzmq would not know these sockets)."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache

import zmq


class Unavailable(Exception):
    """This platform's pyzmq does not expose libzmq's C functions to ctypes."""


@cache
def _libzmq() -> ctypes.CDLL:
    import zmq.backend.cython._zmq as extension

    for path in (extension.__file__, ctypes.util.find_library("zmq")):
        if path is None:
            continue
        try:
            library = ctypes.CDLL(path, use_errno=True)
            library.zmq_recv.restype = ctypes.c_int
            library.zmq_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                         ctypes.c_int]
            library.zmq_errno.restype = ctypes.c_int
            return library
        except (OSError, AttributeError):
            continue
    raise Unavailable("libzmq's C functions are not reachable through ctypes here")


def zmq_recv(socket: zmq.Socket, length: int, flags: int = 0) -> tuple[int, bytes, int]:
    """C's `int size = zmq_recv(socket, buffer, length, flags)`: (size, the bytes written to
    the buffer, errno when size is -1 else 0). `size` is the message's whole size even when
    the buffer took only `length` bytes of it."""
    library = _libzmq()
    buffer = ctypes.create_string_buffer(length)
    size = library.zmq_recv(socket.underlying, buffer, length, flags)
    error = library.zmq_errno() if size == -1 else 0
    return size, buffer.raw[: max(0, min(size, length))], error
