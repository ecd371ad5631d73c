"""The suite every backend must pass (restic's backend/test): plain functions, one contract each.

Each check takes ``new``, a factory of fresh, empty backends of one kind, and ``tmp``, a
directory of its own. The first checks hold each ``Backend`` method to the contract in its
docstring (kiln/store/backend.py); the last ones run a SnapshotStore over the backend (import,
restore, dedup, write order, gc). A backend's test runs ``CHECKS`` (tests/store/test_conformance.py).
A check raises AssertionError naming the contract that failed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from kiln.disks import raw_disk
from kiln.store.backend import Backend, Capabilities, ObjectInfo, ObjectMissing
from kiln.store.backends import open_backend
from kiln.store.maintenance import gc, verify
from kiln.store.store import SnapshotStore

BackendFactory = Callable[[], Backend]
Check = Callable[[BackendFactory, Path], None]
MIB = 1024 * 1024


def _expect(ok: bool, contract: str) -> None:
    if not ok:
        raise AssertionError(contract)


def _raises_missing(call: Callable[[], object], what: str) -> None:
    try:
        call()
    except ObjectMissing:
        return
    raise AssertionError(f"{what} of a missing object must raise ObjectMissing")


# --- the Backend methods ---------------------------------------------------------------------
def check_put_then_get(new: BackendFactory, tmp: Path) -> None:
    b = new()
    _expect(isinstance(b.capabilities, Capabilities), "capabilities is a Capabilities")
    _expect(b.put("packs/ab/one", b"hello") is True, "put of a new name returns True")
    _expect(b.put("index/view", memoryview(b"0123456789")[2:6]) is True, "put takes a memoryview")
    _expect(b.put("doomed/empty", b"") is True, "put takes an empty object")
    _expect(b.get("packs/ab/one") == b"hello", "get returns what put stored")
    _expect(b.get("index/view") == b"2345", "get of a memoryview put returns its bytes")
    _expect(b.get("doomed/empty") == b"", "an empty object reads back empty")


def check_put_is_write_once(new: BackendFactory, tmp: Path) -> None:
    b = new()
    b.put("manifests/snap-1", b"first")
    _expect(b.put("manifests/snap-1", b"second") is False, "put of an existing name returns False")
    _expect(b.get("manifests/snap-1") == b"first", "put never changes an existing object")


def check_racing_puts_leave_one_whole_object(new: BackendFactory, tmp: Path) -> None:
    b = new()
    bodies = [bytes([i]) * (256 * 1024) for i in range(1, 7)]
    wrote: list[bool] = []
    start = threading.Barrier(len(bodies))

    def put(body: bytes) -> None:
        start.wait()
        wrote.append(b.put("config", body))

    threads = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _expect(any(wrote), "one of the racing puts wrote the object")
    _expect(b.get("config") in bodies, "racing puts leave one of their objects whole, never a mix")


def check_missing_objects(new: BackendFactory, tmp: Path) -> None:
    b = new()
    _raises_missing(lambda: b.get("packs/no/such"), "get")
    _raises_missing(lambda: b.get_range("packs/no/such", 0, 10), "get_range")
    _raises_missing(lambda: b.get_range("packs/no/such", -10, 10), "get_range from the end")
    _expect(issubclass(ObjectMissing, KeyError), "ObjectMissing is a KeyError")
    _expect(b.exists("packs/no/such") is False, "exists of a missing object is False")
    _expect(b.touch("packs/no/such") is False, "touch of a missing object returns False")
    _expect(b.exists("packs/no/such") is False, "touch never creates an object")


def check_get_range(new: BackendFactory, tmp: Path) -> None:
    b = new()
    data = bytes(range(256)) * 16
    b.put("packs/ab/p", data)
    _expect(b.get_range("packs/ab/p", 0, 4) == data[:4], "get_range at the start")
    _expect(b.get_range("packs/ab/p", 1000, 100) == data[1000:1100], "get_range inside")
    _expect(
        b.get_range("packs/ab/p", -12, 12) == data[-12:], "a negative offset counts from the end"
    )
    _expect(b.get_range("packs/ab/p", -12, 4) == data[-12:-8], "a suffix range of fewer bytes")
    _expect(b.get_range("packs/ab/p", len(data) - 3, 10) == data[-3:], "past the end: short")
    _expect(b.get_range("packs/ab/p", len(data) + 5, 10) == b"", "from past the end: empty")
    for _ in range(3):  # repeated reads (backends may cache descriptors) stay right
        _expect(b.get_range("packs/ab/p", 7, 9) == data[7:16], "repeated get_range")


def check_exists(new: BackendFactory, tmp: Path) -> None:
    b = new()
    b.put("keys/k", b"x")
    _expect(b.exists("keys/k") is True, "exists of a stored object is True")
    _expect(b.exists("keys") is False and b.exists("keys/") is False, "a prefix is no object")


def _info(b: Backend, name: str) -> ObjectInfo:
    found = [o for o in b.list(name) if o.name == name]
    _expect(len(found) == 1, f"list finds {name} once")
    return found[0]


def check_touch_refreshes_mtime(new: BackendFactory, tmp: Path) -> None:
    b = new()
    b.put("packs/ab/t", b"bytes")
    before = _info(b, "packs/ab/t").mtime
    _expect(abs(before - time.time()) < 300, "mtime is unix seconds of the put")
    time.sleep(0.05)
    _expect(b.touch("packs/ab/t") is True, "touch of a stored object returns True")
    after = _info(b, "packs/ab/t").mtime
    _expect(after > before, "touch moves the mtime forward")
    _expect(b.get("packs/ab/t") == b"bytes", "touch leaves the bytes as they are")
    _expect(b.touch("packs/ab/t") is True, "touch is idempotent")


def check_delete_is_idempotent(new: BackendFactory, tmp: Path) -> None:
    b = new()
    b.put("leases/a.1", b"lease")
    b.get_range("leases/a.1", 0, 1)  # a backend caching a descriptor must still delete
    b.delete("leases/a.1")
    _expect(not b.exists("leases/a.1"), "a deleted object does not exist")
    _raises_missing(lambda: b.get("leases/a.1"), "get after delete")
    _raises_missing(lambda: b.get_range("leases/a.1", 0, 1), "get_range after delete")
    b.delete("leases/a.1")  # again: no error
    b.delete("leases/never")
    _expect(b.put("leases/a.1", b"again") is True, "a name is free again after delete")
    _expect(b.get("leases/a.1") == b"again", "the new object under a reused name is read")


def check_list_by_prefix(new: BackendFactory, tmp: Path) -> None:
    b = new()
    names = {
        "packs/ab/ab01": b"1",
        "packs/cd/cd02": b"22",
        "index/0f": b"333",
        "quarantine/x.y": b"",
    }
    for name, data in names.items():
        b.put(name, data)
    _expect(
        {o.name for o in b.list("packs/")} == {"packs/ab/ab01", "packs/cd/cd02"}, "list by prefix"
    )
    _expect(
        {o.name for o in b.list("pa")} == {"packs/ab/ab01", "packs/cd/cd02"},
        "a prefix is a plain string prefix, not a directory",
    )
    _expect({o.name for o in b.list("packs/ab/")} == {"packs/ab/ab01"}, "a deeper prefix")
    _expect(
        {o.name: o.size for o in b.list("")} == {n: len(d) for n, d in names.items()},
        "list('') is every object, with its size",
    )
    _expect(list(b.list("leases/")) == [], "a prefix nothing has: an empty list, no error")
    b.delete("index/0f")
    _expect(list(b.list("index/")) == [], "list never shows a deleted object")


def check_sync_free_bytes_and_clean_tmp(new: BackendFactory, tmp: Path) -> None:
    b = new()
    b.put("packs/ab/s", b"durable")
    b.sync()
    b.sync()  # idempotent
    _expect(b.get("packs/ab/s") == b"durable", "sync keeps objects")
    free = b.free_bytes()
    _expect(free is None or free >= 0, "free_bytes is None or a count")
    removed = b.clean_tmp(0.0)
    _expect(removed >= 0, "clean_tmp returns a count")
    _expect(b.get("packs/ab/s") == b"durable", "clean_tmp never removes an object")


def check_url_reopens_the_same_objects(new: BackendFactory, tmp: Path) -> None:
    b = new()
    b.put("config", b"{}")
    again = open_backend(b.url).backend
    _expect(again.get("config") == b"{}", "open_backend(url) reaches the same objects")
    again.put("keys/k2", b"k")
    _expect(b.get("keys/k2") == b"k", "and what it puts is seen through the first one")
    _expect(again.capabilities == b.capabilities, "the same backend kind")


def check_concurrent_puts(new: BackendFactory, tmp: Path) -> None:
    b = new()

    def writer(t: int) -> None:
        for i in range(50):
            b.put(f"packs/{t:02x}/{i:04x}", f"{t}-{i}".encode())

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _expect(len(list(b.list("packs/"))) == 200, "puts from several threads are all kept")
    _expect(b.get("packs/03/0031") == b"3-49", "each under its own name")


# --- a store over the backend ----------------------------------------------------------------
class RecordingBackend:
    """A Backend wrapper that records the order of puts, deletes and syncs (write-order checks)."""

    capabilities = Capabilities(process_shared=False)  # workers would bypass the recording

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.url = inner.url
        self.ops: list[tuple[str, str]] = []

    def put(self, name: str, data: bytes | memoryview) -> bool:
        self.ops.append(("put", name))
        return self.inner.put(name, data)

    def get(self, name: str) -> bytes:
        return self.inner.get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        return self.inner.get_range(name, offset, length)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)

    def touch(self, name: str) -> bool:
        return self.inner.touch(name)

    def delete(self, name: str) -> None:
        self.ops.append(("delete", name))
        self.inner.delete(name)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def sync(self) -> None:
        self.ops.append(("sync", ""))
        self.inner.sync()

    def free_bytes(self) -> int | None:
        return self.inner.free_bytes()

    def clean_tmp(self, older_than: float) -> int:
        return self.inner.clean_tmp(older_than)


def sample_disk(path: Path, seed: int = 1, size: int = 4 * MIB) -> Path:
    """A sparse raw disk: compressible data, a hole, random data, a repeated block, zeros."""

    def text(n: int) -> bytes:
        out = bytearray()
        i = 0
        while len(out) < n:
            out += hashlib.sha256(f"{seed}:{i // 7}".encode()).hexdigest().encode() + b" line\n"
            i += 1
        return bytes(out[:n])

    block = os.urandom(64 * 1024)
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in [
            (0, text(700_000)),
            (1 * MIB + 4096, os.urandom(300_000)),
            (2 * MIB, block * 4),
            (3 * MIB, bytes(200_000) + text(5000)),
        ]:
            f.seek(off)
            f.write(data)
    return path


def _store(backend: Backend, tmp: Path) -> SnapshotStore:
    return SnapshotStore(backend, scratch=tmp / "scratch")


def check_import_restores_bit_exact(new: BackendFactory, tmp: Path) -> None:
    store = _store(new(), tmp)
    disk = sample_disk(tmp / "disk.raw")
    res = store.import_disk(raw_disk(disk), "snap-00000000000000001")
    _expect(
        res.virtual_size == disk.stat().st_size and res.new_chunks > 0, "the import stored chunks"
    )
    out = tmp / "out.raw"
    store.restore("snap-00000000000000001", out)
    _expect(out.read_bytes() == disk.read_bytes(), "restore gives the imported disk bit-exact")
    reader = store.reader("snap-00000000000000001")
    raw = disk.read_bytes()
    for off, ln in [(0, 4096), (MIB + 4000, 200), (3 * MIB - 10, 30), (len(raw) - 5, 100)]:
        _expect(
            reader.read(off, ln) == raw[off : off + ln], "SnapshotReader reads the disk's bytes"
        )


def check_reimport_stores_nothing_new(new: BackendFactory, tmp: Path) -> None:
    store = _store(new(), tmp)
    disk = sample_disk(tmp / "disk.raw")
    first = store.import_disk(raw_disk(disk), "snap-00000000000000001")
    packs = len(list(store.backend.list("packs/")))
    again = store.import_disk(raw_disk(disk), "snap-00000000000000002")
    _expect(
        again.new_chunks == 0 and again.new_stored_bytes == 0, "a re-import stores nothing (dedup)"
    )
    _expect(len(list(store.backend.list("packs/"))) == packs, "and writes no pack")
    _expect(again.chunks == first.chunks, "the same chunks")
    _expect(
        store.manifest("snap-00000000000000002").ids
        == store.manifest("snap-00000000000000001").ids,
        "the manifests name the same chunk ids",
    )


def check_manifest_is_written_last(new: BackendFactory, tmp: Path) -> None:
    rec = RecordingBackend(new())
    store = _store(rec, tmp)
    rec.ops.clear()
    store.import_disk(raw_disk(sample_disk(tmp / "disk.raw")), "snap-00000000000000001")
    ops = rec.ops
    kinds = [(op, name.split("/", 1)[0]) for op, name in ops]
    _expect(kinds[0] == ("put", "leases"), "an import puts its lease before anything else")
    at = ops.index(("put", "manifests/snap-00000000000000001"))
    _expect(
        not any(k == ("put", "packs") or k == ("put", "index") for k in kinds[at:]),
        "every pack and index object is put before the manifest",
    )
    _expect(
        ("sync", "") in ops[ops.index(next(o for o in reversed(ops[:at]) if o[0] == "put")) : at],
        "sync runs between the last pack/index put and the manifest",
    )
    _expect(("sync", "") in ops[at:], "sync runs again after the manifest")
    _expect(kinds[-1] == ("delete", "leases"), "the lease is deleted last")
    _expect(list(store.backend.list("leases/")) == [], "no lease is left")


def check_gc_keeps_what_is_live(new: BackendFactory, tmp: Path) -> None:
    store = _store(new(), tmp)
    keep, drop = sample_disk(tmp / "keep.raw", seed=2), sample_disk(tmp / "drop.raw", seed=3)
    store.import_disk(raw_disk(drop), "snap-0000000000000000d")
    store.import_disk(raw_disk(keep), "snap-0000000000000000k")
    store.delete("snap-0000000000000000d")
    report = gc(store, grace_seconds=0)
    _expect(report.chunks_deleted > 0, "gc sweeps the chunks of a deleted snapshot")
    _expect(verify(store).ok, "the store verifies clean after gc")
    out = tmp / "out.raw"
    store.restore("snap-0000000000000000k", out)
    _expect(out.read_bytes() == keep.read_bytes(), "a live snapshot restores bit-exact after gc")


CHECKS: tuple[Check, ...] = (
    check_put_then_get,
    check_put_is_write_once,
    check_racing_puts_leave_one_whole_object,
    check_missing_objects,
    check_get_range,
    check_exists,
    check_touch_refreshes_mtime,
    check_delete_is_idempotent,
    check_list_by_prefix,
    check_sync_free_bytes_and_clean_tmp,
    check_url_reopens_the_same_objects,
    check_concurrent_puts,
    check_import_restores_bit_exact,
    check_reimport_stores_nothing_new,
    check_manifest_is_written_last,
    check_gc_keeps_what_is_live,
)


def run_all(new: BackendFactory, tmp: Path) -> None:
    """Every check, each in a directory of its own under ``tmp``."""
    for check in CHECKS:
        d = tmp / check.__name__
        d.mkdir(parents=True, exist_ok=True)
        check(new, d)
