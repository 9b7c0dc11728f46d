#!/usr/bin/env python3
"""Writes hand-made starting inputs for the fuzz targets into fuzz/seeds/<target>/.

Each input follows the layout the targets read (fuzz/src/harness.rs and the target's
module): well-formed requests of each kind, plus a few malformed chains, so that fuzzing
starts from inputs that reach the devices' request handling. qcow2 seeds are made with
qemu-img and qemu-io when they are installed.
"""
import os
import shutil
import struct
import subprocess
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
NEXT, WRITE, INDIRECT = 1, 2, 4
DATA = 0x8000
INDIRECT_AT = 0x5000


def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)


def desc(addr, length, flags=0, nxt=0):
    """The compact descriptor form: a buffer inside RAM."""
    return u8(flags & 7) + u16(addr) + u16(length) + u8(nxt)


def raw_desc(addr, length, flags=0, nxt=0):
    return u8(0x80) + u64(addr) + u32(length) + u16(flags) + u16(nxt)


def queue(size_log2, descs, heads, used_event=0):
    """A queue in the fixed layout, offering `heads` from next_avail 0."""
    b = u8(size_log2) + u8(len(descs)) + b"".join(descs)
    b += u8(0) + u8(len(heads)) + b"".join(u8(h) for h in heads) + u16(used_event)
    return b


def tail(indirect=(), data=b""):
    return u8(len(indirect)) + b"".join(indirect) + data


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def blk_header(kind, sector=0):
    return u32(kind) + u32(0) + u64(sector)


def blk():
    disk = u8(16) + u8(0) + u32(0)  # 8 KiB, writable, no failures
    three = [desc(DATA, 16, NEXT, 1), desc(0x9000, 512, NEXT | WRITE, 2), desc(0xa000, 1, WRITE)]
    out = [desc(DATA, 16, NEXT, 1), desc(DATA + 16, 512, NEXT, 2), desc(0xa000, 1, WRITE)]
    seeds = {
        "read": (three, blk_header(0, 1)),
        "write": (out, blk_header(1, 2) + bytes(range(256)) * 2),
        "flush": ([desc(DATA, 16, NEXT, 1), desc(0xa000, 1, WRITE)], blk_header(4)),
        "get-id": (three, blk_header(8)),
        "discard": (out, blk_header(11) + u64(1) + u32(2) + u32(0)),
        "write-zeroes": (out, blk_header(13) + u64(0) + u32(4) + u32(1)),
        "unsupported": (three, blk_header(99)),
        "beyond-end": (three, blk_header(0, 1000)),
        "loop": ([desc(DATA, 16, NEXT, 1), desc(0x9000, 16, NEXT | WRITE, 0)], blk_header(0)),
    }
    for name, (descs, data) in seeds.items():
        write("virtio_blk", name, disk + u8(0) + queue(3, descs, [0]) + tail(data=data))
    # Two requests, the second through an indirect table.
    descs = three + [desc(INDIRECT_AT, 48, INDIRECT)]
    ind = [desc(DATA, 16, NEXT, 1), desc(0xb000, 1024, NEXT | WRITE, 2), desc(0xc000, 1, WRITE)]
    write("virtio_blk", "indirect", disk + u8(0) + queue(3, descs, [0, 3])
          + tail(ind, blk_header(0)))
    # Read-only disk, failing operations, event index.
    write("virtio_blk", "readonly", u8(16) + u8(1) + u32(0) + u8(4) + queue(3, out, [0])
          + tail(data=blk_header(1)))
    write("virtio_blk", "failing", u8(16) + u8(0) + u32(1) + u8(0) + queue(3, three, [0])
          + tail(data=blk_header(0)))


def rng():
    write("virtio_rng", "one", u8(0) + queue(2, [desc(DATA, 64, WRITE)], [0]) + tail())
    write("virtio_rng", "two", u8(4) + queue(2, [desc(DATA, 64, WRITE), desc(0x9000, 32, WRITE)],
                                              [0, 1]) + tail())
    write("virtio_rng", "indirect", u8(0) + queue(2, [desc(INDIRECT_AT, 32, INDIRECT)], [0])
          + tail([desc(DATA, 8, WRITE | NEXT, 1), desc(0x9000, 8, WRITE)]))
    write("virtio_rng", "outside-ram", u8(0) + queue(2, [desc(0xfff0, 64, WRITE)], [0]) + tail())
    write("virtio_rng", "bad-avail-idx", u8(8) + queue(2, [desc(DATA, 64, WRITE)], [])[:-2]
          + u16(9) + u16(0) + tail())


def console():
    text = b"hello, console\n"
    for name, evs in [("tx-rx", b""), ("rx-first", u8(2) + u8(0) + u8(1)),
                      ("input-event", u8(2) + u8(2) + u8(1))]:
        events = evs if evs else u8(0)
        q_rx = queue(3, [desc(0x9000, 8, WRITE), desc(0x9100, 64, WRITE)], [0, 1])
        q_tx = queue(3, [desc(DATA, len(text))], [0])
        write("virtio_console", name, u8(5) + b"typed" + events + u8(0) + q_rx + q_tx
              + tail(data=text))


def net():
    frame = bytes(12) + b"\xff" * 6 + b"\x52\x54\x00\x12\x34\x56" + b"\x08\x00" + bytes(46)
    frames = u8(2) + u16(len(frame)) + frame[:64] + u16(8) + bytes(8)
    q_rx = queue(3, [desc(0x9000, 1526, WRITE), desc(0xa000, 1526, WRITE)], [0, 1])
    q_tx = queue(3, [desc(DATA, 12, NEXT, 1), desc(DATA + 12, 60)], [0])
    for name, script, evs in [("both", 0, u8(0)), ("tx-full", 1, u8(3) + u8(1) + u8(3) + u8(2)),
                              ("tx-failed", 2, u8(1) + u8(1)), ("rx-only", 0, u8(1) + u8(2))]:
        write("virtio_net", name, frames + u32(script) + evs + u8(0) + q_rx + q_tx
              + tail(data=frame))


def chain():
    cases = {
        "simple": [desc(DATA, 16, NEXT, 1), desc(0x9000, 32, WRITE)],
        "readable-after-writable": [desc(0x9000, 16, WRITE | NEXT, 1), desc(DATA, 16)],
        "loop": [desc(DATA, 16, NEXT, 1), desc(DATA, 16, NEXT, 0)],
        "zero-length": [desc(DATA, 0, NEXT, 1), desc(0x9000, 0, WRITE)],
        "raw-outside": [raw_desc(1 << 40, 16)],
        "bad-next": [desc(DATA, 16, NEXT, 200)],
    }
    for name, descs in cases.items():
        write("virtio_chain", name, u16(20) + u8(0) + queue(4, descs, [0]) + tail(data=b"x" * 32))
    write("virtio_chain", "indirect", u16(7) + u8(0) + queue(4, [desc(INDIRECT_AT, 32, INDIRECT)],
                                                            [0])
          + tail([desc(DATA, 4, NEXT, 1), desc(0x9000, 8, WRITE)], b"abcd"))
    write("virtio_chain", "nested-indirect",
          u16(0) + u8(0) + queue(4, [desc(INDIRECT_AT, 16, INDIRECT)], [0])
          + tail([desc(INDIRECT_AT, 16, INDIRECT)]))


def qcow2():
    if not shutil.which("qemu-img") or not shutil.which("qemu-io"):
        print("make-seeds: no qemu-img/qemu-io; no qcow2 seeds")
        return
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "x.qcow2")
        for name, opts, io in [
            ("empty-v3", "cluster_size=512", []),
            ("written-v3", "cluster_size=512", ["write -P 0x5a 0 1k", "write -z 4k 512"]),
            ("written-v2", "compat=0.10,cluster_size=512", ["write -P 0x33 1k 2k"]),
            ("refcount-bits-1", "cluster_size=1024,refcount_bits=1", ["write -P 1 0 1k"]),
            ("compressed", "cluster_size=4096", ["write -c -P 0x11 0 4k"]),
        ]:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, img, "64K"],
                           check=True)
            for cmd in io:
                subprocess.run(["qemu-io", "-f", "qcow2", "-c", cmd, img], check=True,
                               stdout=subprocess.DEVNULL)
            with open(img, "rb") as f:
                write("qcow2_header", name, f.read())


if __name__ == "__main__":
    blk()
    rng()
    console()
    net()
    chain()
    qcow2()
