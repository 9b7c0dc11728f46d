# A Perl workload for bench/riscv-programs/run.sh: regular expressions, hashes, sorting,
# sprintf/split/join, string ops, over generated log lines; integers only, so every
# build prints the same bytes. Usage: perl work.pl [SCALE]
use strict;
use warnings;

my $scale = shift // 1;
my $seed = 42;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed >> 8; }

my @hosts = map { sprintf "host%02d.example.org", $_ } 0 .. 39;
my @paths = qw(/index.html /api/v1/users /api/v1/items /static/app.js /static/style.css
               /login /logout /search /api/v2/orders /img/logo.png);
my @verbs = qw(GET GET GET POST PUT DELETE);
my @agents = ('curl/8.5', 'Mozilla/5.0 (X11; Linux)', 'Wget/1.21', 'python-requests/2.31');

for my $round (1 .. $scale) {
    my @lines;
    for my $i (1 .. 60000) {
        my $ip = join '.', map { rnd() % 256 } 1 .. 4;
        my $path = $paths[rnd() % @paths];
        $path .= '?q=' . (rnd() % 1000) . '&page=' . (rnd() % 20) if rnd() % 3 == 0;
        push @lines, sprintf '%s - - [%02d/Dec/2026:%02d:%02d:%02d +0000] "%s %s HTTP/1.1" %d %d "%s" %s',
            $ip, 1 + rnd() % 28, rnd() % 24, rnd() % 60, rnd() % 60, $verbs[rnd() % @verbs], $path,
            (200, 200, 200, 304, 404, 500)[rnd() % 6], rnd() % 50000, $agents[rnd() % @agents],
            $hosts[rnd() % @hosts];
    }

    my (%by_status, %by_path, %bytes_by_host, %ips, %queries, %hour);
    my $bad = 0;
    for (@lines) {
        if (m{^(\d+)\.(\d+)\.\d+\.\d+ - - \[(\d\d)/\w+/\d+:(\d\d):\d\d:\d\d [^\]]+\] "(\w+) ([^ ?"]+)(?:\?([^ "]*))? HTTP/1\.1" (\d{3}) (\d+) "([^"]*)" (\S+)$}) {
            $by_status{$8}++;
            $by_path{"$5 $6"}++;
            $bytes_by_host{$11} += $9;
            $ips{"$1.$2"}++;
            $hour{$4}++;
            if (defined $7) {
                my %kv = map { split /=/, $_, 2 } split /&/, $7;
                $queries{$kv{q} % 10}++ if exists $kv{q};
            }
        } else {
            $bad++;
        }
    }
    my @top = (sort { $by_path{$b} <=> $by_path{$a} || $a cmp $b } keys %by_path)[0 .. 4];
    print "round $round: bad=$bad statuses=",
        join(',', map { "$_:$by_status{$_}" } sort keys %by_status), "\n";
    print "  top paths: ", join('; ', map { "$_=$by_path{$_}" } @top), "\n";
    my @hb = sort { $bytes_by_host{$b} <=> $bytes_by_host{$a} || $a cmp $b } keys %bytes_by_host;
    print "  heaviest hosts: @hb[0..2] ($bytes_by_host{$hb[0]})\n";
    print "  /16 nets: ", scalar(keys %ips), " queries: ",
        join(',', map { "$_:$queries{$_}" } sort { $a <=> $b } keys %queries), "\n";

    # String rewriting: substitutions with captures and a callback, tr, reverse, index.
    my $text = join "\n", @lines[0 .. 19999];
    (my $masked = $text) =~ s/(\d+)\.(\d+)\.(\d+)\.(\d+)/$1.$2.x.x/g;
    my $n = ($masked =~ s/"(GET|POST|PUT|DELETE) /'"' . lc($1) . ' '/ge);
    my $digits = ($masked =~ tr/0-9//);
    my $words = () = $masked =~ /\b[a-z]{4,}\b/g;
    my $rev = reverse substr($masked, 0, 64);
    print "  rewritten=$n digits=$digits words=$words pos=", index($masked, 'python'), " rev=$rev\n";

    # Word frequencies over a generated text, sorted.
    my %freq;
    my @syl = qw(ka lo mi ne su ta ri po an el or ux);
    for (1 .. 150000) {
        my $w = join '', map { $syl[rnd() % @syl] } 0 .. rnd() % 3;
        $freq{$w}++;
    }
    my @fw = sort { $freq{$b} <=> $freq{$a} || $a cmp $b } keys %freq;
    print "  words: ", scalar(@fw), " top: @fw[0..4]\n";
}
