# gawk under Tandem: fields, associative arrays, printf, gsub/split/substr, asort and
# asorti, user functions, recursion, string/number conversion, getline-free END processing.
function fact(n) { return n <= 1 ? 1 : n * fact(n - 1) }
BEGIN { FS = ":"; OFS = "|" }
/^#/ { comments++; next }
NF >= 3 {
    total[$1] += $3
    n[$1]++
    if ($3 > maxv) { maxv = $3; maxname = $2 }
    line = $2
    gsub(/[aeiou]/, "_", line)
    names = names line " "
}
END {
    count = asorti(total, keys)
    for (i = 1; i <= count; i++) {
        k = keys[i]
        printf "%-5s total=%7.2f mean=%.3f n=%d\n", k, total[k], total[k] / n[k], n[k]
    }
    print "max", maxname, maxv
    print "names", names
    print "comments", comments + 0
    m = split("5 3 9 1 7", a, " ")
    asort(a)
    s = ""
    for (i = 1; i <= m; i++) s = s a[i] ","
    print "sorted", s
    print "fact", fact(10), fact(20)
    print "substr", substr("tandem-riscv64", 8), toupper("abc"), index("hello", "ll"), length("héllo")
    printf "%5.1f%% %x %o %c %s\n", 12.345, 255, 8, 65, sprintf("%03d", 7)
    print 1e6, 0.1 + 0.2, 2^53, int(-3.7), "10" + 5, "3x" * 2
}
