"""Offline bundles: a commons carried by hand as one self-verifying file.

Format (specified in ``protocols/bundle.md``)::

    bundle  = magic header-frame entry-frame* end-frame digest
    magic   = "P2PCBUN" 0x01                     8 bytes, the last is the format version
    frame   = uvarint(length) bytes              1 <= length <= 65536
    header  = DAG-CBOR map {commons, created, entries, bytes}
    end     = 0x00                               a zero-length frame
    digest  = SHA-256 of every byte before it    32 bytes, then end of file

The digest catches truncation and accidental damage; each entry's signature and hash
links catch deliberate tampering.  Import is all or nothing: it runs in one transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from p2pcommons.protocols.framing import decode_uvarint, encode_uvarint

from . import dagcbor
from .dagcbor import CID
from .entry import MAX_ENTRY_BYTES
from .errors import (
    BundleTampered,
    BundleTruncated,
    InvalidEntry,
    MalformedBundle,
)
from .ingest import IngestReport, ingest
from .store import Store

MAGIC = b"P2PCBUN\x01"
MAX_HEADER_BYTES = 64 * 1024
DIGEST_BYTES = 32
_CHUNK = 1 << 16


@dataclass(frozen=True)
class BundleHeader:
    commons: CID
    created: int
    entries: int
    bytes: int


def write_bundle(
    store: Store,
    commons: CID,
    out: BinaryIO,
    *,
    created: int,
    on_entry: Callable[[int], None] | None = None,
) -> BundleHeader:
    """Write every stored entry of ``commons``: the genesis first, then each author's log
    in sequence order, so an importer can check every chain as it streams."""
    genesis = store.get_raw(commons)
    if genesis is None:
        raise MalformedBundle(f"This node holds no commons {commons}.")
    count = store.count(commons)
    size = sum(len(r) for r in store.iter_raw(commons))
    header = BundleHeader(commons, created, count, size)
    digest = hashlib.sha256()

    def emit(data: bytes) -> None:
        digest.update(data)
        out.write(data)

    emit(MAGIC)
    header_bytes = dagcbor.encode(
        {"commons": commons, "created": created, "entries": count, "bytes": size}
    )
    emit(encode_uvarint(len(header_bytes)) + header_bytes)
    emit(encode_uvarint(len(genesis)) + genesis)
    written = 1
    for raw in store.iter_raw(commons, order="log"):
        if raw == genesis:
            continue
        emit(encode_uvarint(len(raw)) + raw)
        written += 1
        if on_entry:
            on_entry(written)
    emit(b"\x00")
    out.write(digest.digest())
    return header


class BundleReader:
    """Streams a bundle's entries while hashing it; :meth:`finish` checks the trailer."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._digest = hashlib.sha256()
        # Read in large chunks and hash consumed bytes lazily, a chunk at a time: reading
        # and hashing each varint byte and frame on its own costs more than decoding.
        self._buf = b""
        self._pos = 0  # next unconsumed byte of _buf
        self._hashed = 0  # bytes of _buf already fed to the digest
        self._eof = False
        self.bytes_read = 0
        magic = self._read_exact(len(MAGIC), what="the bundle's magic bytes")
        if magic != MAGIC:
            if magic[:7] == MAGIC[:7]:
                raise MalformedBundle(f"Bundle format version {magic[7]} is not supported.")
            raise MalformedBundle("This file is not a p2pcommons bundle.")
        header_bytes = self._read_frame(MAX_HEADER_BYTES)
        if not header_bytes:
            raise MalformedBundle("The bundle has no header.")
        try:
            header = dagcbor.decode(header_bytes)
            if not isinstance(header, dict) or set(header) != {"commons", "created", "entries", "bytes"}:
                raise MalformedBundle("The bundle header has the wrong fields.")
            for key in ("created", "entries", "bytes"):
                if type(header[key]) is not int or header[key] < 0:
                    raise MalformedBundle(f"The bundle header's {key} is not a count.")
            self.header = BundleHeader(
                dagcbor.link(header["commons"]), header["created"], header["entries"], header["bytes"]
            )
        except InvalidEntry as exc:
            raise MalformedBundle(f"The bundle header is invalid ({exc})") from None
        self.entries_read = 0
        self.entry_bytes_read = 0
        self._finished = False

    def _fill(self, n: int) -> bool:
        """Make ``n`` unconsumed bytes available in the buffer if the file has them."""
        while len(self._buf) - self._pos < n and not self._eof:
            self._digest.update(memoryview(self._buf)[self._hashed:self._pos])
            chunk = self._source.read(max(_CHUNK, n - (len(self._buf) - self._pos)))
            if not chunk:
                self._eof = True
            self._buf = self._buf[self._pos:] + chunk
            self._pos = self._hashed = 0
        return len(self._buf) - self._pos >= n

    def _take(self, n: int) -> bytes:
        """The next ``n`` bytes, consumed but not yet hashed; the caller made sure they exist."""
        start = self._pos
        self._pos = start + n
        self.bytes_read += n
        return self._buf[start:start + n]

    def _read_exact(self, n: int, *, what: str) -> bytes:
        if not self._fill(n):
            raise BundleTruncated(f"The bundle ends in the middle of {what}: it is truncated.")
        return self._take(n)

    def _read_frame(self, limit: int) -> bytes:
        if len(self._buf) - self._pos < 5:
            self._fill(5)  # a frame length is at most 5 bytes; fewer may remain at the end
        decoded = decode_uvarint(self._buf, self._pos, limit=5, what="A frame length", error=MalformedBundle)
        if decoded is None:
            raise BundleTruncated("The bundle ends in the middle of a frame length: it is truncated.")
        length, pos = decoded
        self.bytes_read += pos - self._pos
        self._pos = pos
        if length > limit:
            raise MalformedBundle(f"A frame of {length} bytes exceeds the limit of {limit} bytes.")
        return self._read_exact(length, what="an entry") if length else b""

    def __iter__(self) -> Iterator[bytes]:
        while True:
            frame = self._read_frame(MAX_ENTRY_BYTES)
            if not frame:
                self._finish()
                return
            self.entries_read += 1
            self.entry_bytes_read += len(frame)
            yield frame

    def _finish(self) -> None:
        self._digest.update(memoryview(self._buf)[self._hashed:self._pos])
        self._hashed = self._pos
        expected = self._digest.digest()
        if not self._fill(DIGEST_BYTES):
            raise BundleTruncated("The bundle ends before its checksum: it is truncated.")
        trailer = self._buf[self._pos:self._pos + DIGEST_BYTES]
        self._pos = self._hashed = self._pos + DIGEST_BYTES
        if trailer != expected:
            raise BundleTampered("The bundle's checksum does not match its contents: it was altered or damaged.")
        if self._fill(1):
            raise MalformedBundle("Unexpected bytes follow the bundle's checksum.")
        if self.entries_read != self.header.entries:
            raise BundleTampered(
                f"The bundle holds {self.entries_read} entries but its header announces {self.header.entries}."
            )
        if self.entry_bytes_read != self.header.bytes:
            raise BundleTampered(
                f"The bundle holds {self.entry_bytes_read} bytes of entries but its header announces "
                f"{self.header.bytes}."
            )
        self._finished = True

    @property
    def finished(self) -> bool:
        return self._finished


def import_bundle(
    store: Store,
    source: BinaryIO,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[BundleHeader, IngestReport]:
    """Validate and store a bundle, all or nothing.

    Every entry goes through :func:`p2pcommons.ingest.ingest` (the same path sync uses);
    the transaction commits only after the trailer's checksum matched.
    """
    reader = BundleReader(source)
    header = reader.header
    done = 0

    def progress(part: IngestReport) -> None:
        nonlocal done
        done += part.received
        if on_progress:
            on_progress(done, header.entries)

    with store.transaction():
        report = ingest(store, reader, commons=header.commons, atomic=True, on_batch=progress)
        if not reader.finished:  # ingest stops early only by raising; be explicit anyway
            raise BundleTruncated("The bundle was not read to its end.")
    return header, report
