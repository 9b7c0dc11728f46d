# perl under Tandem: regexes (captures, named groups, /g, tr), hashes, sprintf, sort with a
# custom order, pack/unpack, local $_, closures, sprintf of floats, List::Util, string repeat.
use strict;
use warnings;
use List::Util qw(sum max min first reduce shuffle);
use Digest::MD5 qw(md5_hex);
use POSIX qw(floor ceil);

my $text = <<'END';
The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs!
Pack my box with five dozen liquor jugs. 2024-02-29 and 1999-12-31 are dates.
END
my %freq;
$freq{lc $1}++ while $text =~ /([A-Za-z]+)/g;
for my $w (sort { $freq{$b} <=> $freq{$a} || $a cmp $b } keys %freq) {
    next if $freq{$w} < 2;
    printf "%-6s %3d\n", $w, $freq{$w};
}
while ($text =~ /(?<y>\d{4})-(?<m>\d\d)-(?<d>\d\d)/g) {
    print "date: $+{d}/$+{m}/$+{y}\n";
}
(my $rot = "Hello, World") =~ tr/A-Za-z/N-ZA-Mn-za-m/;
print "rot13: $rot\n";
my @nums = map { $_ * $_ - 3 * $_ } 1 .. 20;
printf "sum=%d max=%d min=%d first>100=%d product=%s\n", sum(@nums), max(@nums), min(@nums),
    (first { $_ > 100 } @nums), (reduce { $a * $b } 1 .. 15);
my $packed = pack("NnC a4 w/a*", 0xDEADBEEF, 513, 7, "abcd", "varlen");
print "packed: ", unpack("H*", $packed), "\n";
my ($n32, $n16, $c, $s4, $v) = unpack("NnC a4 w/a*", $packed);
printf "unpacked: %x %d %d %s %s\n", $n32, $n16, $c, $s4, $v;
print "md5: ", md5_hex("tandem"), "\n";
printf "floats: %.10g %e %.3f %d %d\n", 1 / 7, 6.02214076e23, sqrt(2), floor(-2.5), ceil(-2.5);
my @counters = map { my $n = $_; sub { $n *= 2 } } 1 .. 3;
print "closures: ", join(",", map { $_->(); $_->() } @counters), "\n";
my %h = (one => 1, two => 2, three => 3, four => 4);
print join(" ", map { "$_=$h{$_}" } sort { $h{$a} <=> $h{$b} } keys %h), "\n";
my $s = join "", map { chr(65 + ($_ * 7) % 26) } 0 .. 25;
print "perm: $s ", scalar reverse($s), "\n";
my @sorted = sort { length($a) <=> length($b) or $a cmp $b } qw(pear fig banana kiwi apple date);
print "sorted: @sorted\n";
my $big = 1;
$big *= $_ for 1 .. 20;
print "20! = $big, 2**53+1 = ", 2**53 + 1, ", int division ", int(-7 / 2), ", modulo ", -7 % 3, "\n";
local $_ = "a1b22c333";
my @d = /(\d+)/g;
s/(\d+)/<$1>/g;
print "digits: @d -> $_\n";
print "x" x 5, "-" x 3, "\n";
exit 3;
