# A pure-Python workload for bench/riscv-programs/run.sh: the interpreter's own hot paths
# (bytecode dispatch, dict and str operations, small and big ints, calls, sorting), no
# floating point and no I/O but the result lines, so every build prints the same bytes.
# Usage: python3 work.py [SCALE]
import sys

SCALE = int(sys.argv[1]) if len(sys.argv) > 1 else 1


def lcg(seed):
    while True:
        seed = (seed * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        yield seed >> 33


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def words(n, seed):
    syll = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "ux"]
    g = lcg(seed)
    out = []
    for _ in range(n):
        k = 1 + next(g) % 4
        out.append("".join(syll[next(g) % len(syll)] for _ in range(k)))
    return out


def word_stats(ws):
    counts = {}
    for w in ws:
        counts[w] = counts.get(w, 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    by_len = {}
    for w in counts:
        by_len.setdefault(len(w), []).append(w)
    longest = max(by_len)
    return len(counts), top, longest, sorted(by_len[longest])[:3]


def sieve(n):
    flags = bytearray([1]) * (n + 1)
    flags[0] = flags[1] = 0
    i = 2
    while i * i <= n:
        if flags[i]:
            flags[i * i :: i] = bytearray(len(range(i * i, n + 1, i)))
        i += 1
    primes = [i for i in range(n + 1) if flags[i]]
    return len(primes), sum(primes) % 1000003


class Vec:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y

    def add(self, o):
        return Vec(self.x + o.x, self.y + o.y)

    def dot(self, o):
        return self.x * o.x + self.y * o.y


def objects(n):
    g = lcg(7)
    acc = Vec(0, 0)
    s = 0
    for _ in range(n):
        v = Vec(next(g) % 100 - 50, next(g) % 100 - 50)
        acc = acc.add(v)
        s += acc.dot(v)
    return acc.x, acc.y, s


def text(n):
    parts = []
    for i in range(n):
        parts.append("%05d:%s" % (i, format(i * 2654435761 % 4294967296, "x")))
    s = ",".join(parts)
    fields = s.split(",")
    rev = "".join(f[::-1] for f in fields[:1000])
    return len(s), fields[-1], s.count("ab"), s.upper().count("F"), rev[:24]


def bigint(n):
    x = 3 ** n
    digits = hex(x)
    small = sum(int(d) for d in str(7 ** 1500))
    return len(digits), digits.count("f"), (x * x) % 1000000007, small


for rnd in range(SCALE):
    print("fib", fib(24))
    print("words", word_stats(words(60000, 12345 + rnd)))
    print("sieve", sieve(400000))
    print("objects", objects(120000))
    print("text", text(60000))
    print("bigint", bigint(20000))
    data = [x % 100000 for x, _ in zip(lcg(99 + rnd), range(150000))]
    data.sort()
    print("sort", data[0], data[len(data) // 2], data[-1], sum(data[::1000]))
