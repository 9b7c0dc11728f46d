#!/usr/bin/env python3
"""Picks a small corpus for one target: the fewest inputs that still reach every
coverage edge the candidates reach (greedy set cover, smaller inputs first on ties).

    fuzz/minimise.py TARGET [MAX_FILES] CANDIDATE_DIR...

Runs the target's fuzz binary (built by `cargo fuzz build -O -a`) in libFuzzer's merge
mode to learn each candidate's edges, then replaces fuzz/corpus/TARGET with the pick,
named by content hash. libFuzzer's own `-merge=1` keeps every input that adds a
feature in size order, which is several times more files.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "target/x86_64-unknown-linux-gnu/release")


def main():
    target = sys.argv[1]
    limit = int(sys.argv[2])
    dirs = sys.argv[3:]
    with tempfile.TemporaryDirectory() as tmp:
        control = os.path.join(tmp, "control")
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        subprocess.run([os.path.join(BIN, target), "-merge=1", "-use_counters=0",
                        "-max_len=1048576", f"-merge_control_file={control}", out, *dirs],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(control) as f:
            lines = f.read().splitlines()
        n = int(lines[0])
        files = lines[2:2 + n]
        edges, size = {}, {}
        for line in lines[2 + n:]:
            parts = line.split()
            if parts[0] == "STARTED":
                size[int(parts[1])] = int(parts[2])
            elif parts[0] == "COV":
                edges[int(parts[1])] = set(parts[2:])
    everything = set().union(*edges.values())
    covered, pick = set(), []
    while covered != everything and len(pick) < limit:
        best = max(edges, key=lambda i: (len(edges[i] - covered), -size.get(i, 0)))
        if not edges[best] - covered:
            break
        pick.append(best)
        covered |= edges[best]
    dest = os.path.join(HERE, "corpus", target)
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    for i in pick:
        with open(files[i], "rb") as f:
            data = f.read()
        with open(os.path.join(dest, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    total = sum(size.get(i, 0) for i in pick)
    print(f"{target}: {len(pick)} inputs ({total} bytes) reach {len(covered)} of "
          f"{len(everything)} edges of {len(files)} candidates")


if __name__ == "__main__":
    main()
