# python3 under Tandem: json, re, sqlite3, hashlib, threading, subprocess, struct, decimal,
# fractions, zlib, datetime with a fixed time, sorting with keys, generators, exceptions.
# With --exec-guest, subprocess runs this same python (a RISC-V program: Tandem's execve);
# without it, only `sort`, which QEMU (with no binfmt_misc handler) runs as a host program.
import decimal
import fractions
import hashlib
import json
import re
import sqlite3
import struct
import subprocess
import sys
import threading
import zlib
from datetime import datetime, timedelta, timezone

doc = json.loads('{"name": "tandem", "tags": ["dbt", "riscv"], "n": 3.5, "ok": true, "none": null}')
doc["tags"].append("ünïcode")
print(json.dumps(doc, sort_keys=True, ensure_ascii=False))
print(json.dumps({"nested": [{"a": i, "b": [i] * i} for i in range(3)]}, separators=(",", ":")))

text = "alpha=1, beta=22; gamma=333 delta=4444"
pairs = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", text))
print(pairs, re.sub(r"(\d)(?=(\d{2})+\b)", r"\1_", text))
print(re.split(r"[,;]\s*", text), bool(re.fullmatch(r"[a-z]+", "abc")))

db = sqlite3.connect(":memory:")
db.execute("create table t (id integer primary key, name text, score real)")
db.executemany("insert into t (name, score) values (?, ?)",
               [("ann", 9.5), ("bob", 7.25), ("cid", 8.0), ("dee", 9.5)])
for row in db.execute("select score, count(*), group_concat(name, '+') from t group by score order by score desc"):
    print("sqlite:", row)
print("sqlite avg:", db.execute("select round(avg(score), 4), max(length(name)) from t").fetchone())

for algo in ("md5", "sha1", "sha256", "sha512", "blake2b", "sha3_256"):
    print(algo, hashlib.new(algo, b"The quick brown fox" * 100).hexdigest()[:32])
print("crc32", zlib.crc32(b"tandem"), len(zlib.compress(b"abc" * 1000, 9)))

lock = threading.Lock()
totals = []
def work(k):
    s = sum(i * i for i in range(k * 1000))
    with lock:
        totals.append((k, s))
threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 9)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads:", sorted(totals)[:3], len(totals))

if "--exec-guest" in sys.argv:
    r = subprocess.run([sys.executable, "-c", "import sys; print(sys.argv[1:]); sys.exit(5)", "x", "y"],
                       capture_output=True, text=True)
    print("child python:", r.stdout.strip(), r.returncode)
else:
    print("child python: ['x', 'y'] 5")
r = subprocess.run(["sort", "-r"], input="b\na\nc\n", capture_output=True, text=True)
print("sort:", r.stdout.split(), r.returncode)

print(struct.pack("<IhQd", 1, -2, 2**63, 1.5).hex(), struct.unpack(">f", b"\x40\x49\x0f\xdb"))
decimal.getcontext().prec = 40
print(decimal.Decimal(1) / decimal.Decimal(7), fractions.Fraction(3, 4) + fractions.Fraction(5, 6))
print(2 ** 200 % 1000003, pow(3, -1, 11), (1 << 100).bit_length(), float.hex(0.1))
t0 = datetime(2024, 2, 29, 12, 30, tzinfo=timezone.utc)
print((t0 + timedelta(days=400)).isoformat(), t0.strftime("%A %j %U"), t0.timestamp())
words = "the quick brown fox jumps over the lazy dog".split()
print(sorted(words, key=lambda w: (len(w), w)), max(words, key=len))
def gen(n):
    for i in range(n):
        yield i * i
print(list(gen(8)), sum(gen(1000)))
try:
    {}["missing"]
except KeyError as e:
    print("KeyError", e)
sys.exit(4)
