"""A SHA-256 whose running state can be stored in a checkpoint and continued in another process.

An export object is hashed while it streams, but a long export stops mid-object and continues in another
Lambda invocation, and `hashlib` objects cannot be serialised (no pickling, no access to their state). Hashing
the object again after the upload would read every byte back from S3. Instead this calls OpenSSL's
`SHA256_Init` / `SHA256_Update` / `SHA256_Final` through ctypes: their `SHA256_CTX` is a plain C struct (eight
32-bit words of state, a 64-bit bit count, the 64-byte unfinished block and two counters; 112 bytes, the same
layout in every OpenSSL and LibreSSL release), so its raw bytes are the whole state and can be stored and
restored. Tests prove the digests equal `hashlib.sha256` across arbitrary split points.

The library is the very libcrypto Python's `_hashlib` is linked against: `dlsym` on the extension module's
handle searches its dependencies, so no library path is guessed (the Lambda runtime has no `ldconfig` cache).
Each `update` is one C call; the stream feeds it whole multipart parts (5 MiB and more), so ctypes' overhead
is nothing next to hashing the bytes.
"""

from __future__ import annotations

import base64
import ctypes
from functools import cache

CTX_SIZE = 112
DIGEST_SIZE = 32


@cache
def _libcrypto() -> ctypes.CDLL:
    import _hashlib  # type: ignore[import-not-found]  # CPython's OpenSSL binding, always built on Lambda

    lib = ctypes.CDLL(_hashlib.__file__)
    for name in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
        getattr(lib, name).restype = ctypes.c_int
    lib.SHA256_Init.argtypes = [ctypes.c_char_p]
    lib.SHA256_Update.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return lib


class ResumableSha256:
    """`hashlib.sha256`'s `update` and `hexdigest`, plus `state()` and `from_state()` to carry it across processes."""

    def __init__(self, state: str | None = None) -> None:
        if state is None:
            self._ctx = ctypes.create_string_buffer(CTX_SIZE)
            if _libcrypto().SHA256_Init(self._ctx) != 1:
                raise RuntimeError("OpenSSL's SHA256_Init failed")
        else:
            raw = base64.b64decode(state)
            if len(raw) != CTX_SIZE:
                raise ValueError(f"a SHA-256 state is {CTX_SIZE} bytes, not {len(raw)}")
            self._ctx = ctypes.create_string_buffer(raw, CTX_SIZE)

    def update(self, data: bytes) -> None:
        """Feed `data`; ctypes hands the bytes object's own buffer to C, no copy is made."""
        if _libcrypto().SHA256_Update(self._ctx, data, len(data)) != 1:
            raise RuntimeError("OpenSSL's SHA256_Update failed")

    def state(self) -> str:
        """The running state as text (base64 of the 112-byte context), for a JSON checkpoint."""
        return base64.b64encode(self._ctx.raw).decode()

    def hexdigest(self) -> str:
        """The digest of everything fed so far; the running state is left as it was (finalised on a copy)."""
        copy = ctypes.create_string_buffer(self._ctx.raw, CTX_SIZE)
        out = ctypes.create_string_buffer(DIGEST_SIZE)
        if _libcrypto().SHA256_Final(out, copy) != 1:
            raise RuntimeError("OpenSSL's SHA256_Final failed")
        return out.raw.hex()
