# Sourced by the scripts that fetch riscv64 software from Debian trixie (fetch-riscv-guest.sh,
# riscv-io-tools.sh). A private apt configuration points at the mirror the host's apt already
# uses (never a host name written here), with arch=riscv64: it downloads .debs, installs
# nothing and leaves the host's apt state alone.
#
#   rv64_need CMD PKG            installs the host package PKG when the command CMD is missing
#   rv64_apt_init DIR            private apt state in DIR (created; e.g. under a mktemp -d)
#                                and the trixie riscv64 package index; then:
#   rv64_apt_get ARGS...         apt-get with that configuration (e.g. download PKG:riscv64)
#   rv64_apt_cache ARGS...       apt-cache with that configuration
#   rv64_depends PKG...          the packages PKG depends on (Depends, Pre-Depends), one a line
#   rv64_closure PKG...          PKG and everything it needs, recursively (apt's own resolver on
#                                an empty system, no Recommends), as "name version" lines
#
# Messages start with the calling script's name, as its own do.

rv64_name=$(basename "$0" .sh)

rv64_die() {
  echo "$rv64_name: $*" >&2
  exit 1
}

rv64_need() {
  command -v "$1" >/dev/null && return 0
  echo "$rv64_name: installing $2 on the host (for $1)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  command -v "$1" >/dev/null || rv64_die "$1 still missing after installing $2"
}

# The mirror: the first non-security URI of the host's Debian sources (deb822 or one-line format).
rv64_mirror() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v security | head -1 || true)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
          /etc/apt/sources.list 2>/dev/null || true)
  fi
  [ -n "$uri" ] || rv64_die "no Debian mirror found in /etc/apt"
  echo "$uri"
}

rv64_apt_opts=()

rv64_apt_init() {
  local dir=$1 uri
  uri=$(rv64_mirror)
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/etc/preferences.d"
  echo "deb [arch=riscv64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" \
    > "$dir/etc/sources.list"
  : > "$dir/status"
  rv64_apt_opts=(-o "Dir::Etc::SourceList=$dir/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                 -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
                 -o "Dir::State::Lists=$dir/lists" -o "Dir::State::Status=$dir/status"
                 -o "Dir::Cache=$dir/cache" -o "APT::Architecture=riscv64"
                 -o "APT::Architectures::=riscv64" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  echo "$rv64_name: reading the riscv64 package index of Debian trixie ($uri)"
  apt-get "${rv64_apt_opts[@]}" -qq update || rv64_die "cannot read the riscv64 package index from $uri"
}

rv64_apt_get() {
  [ ${#rv64_apt_opts[@]} -gt 0 ] || rv64_die "rv64_apt_init first"
  apt-get "${rv64_apt_opts[@]}" "$@"
}

rv64_apt_cache() {
  [ ${#rv64_apt_opts[@]} -gt 0 ] || rv64_die "rv64_apt_init first"
  apt-cache "${rv64_apt_opts[@]}" "$@"
}

rv64_depends() {
  rv64_apt_cache depends "$@" \
    | awk '$1 ~ /^\|?(Pre)?Depends:$/ && $2 !~ /^</ { sub(/:riscv64$/, "", $2); print $2 }' | sort -u
}

# apt's resolver, simulating an installation on an empty system (the private status file is
# empty), picks one package for each alternative and virtual dependency the way apt-get install
# would; its "Inst NAME (VERSION ..." lines are the closure.
rv64_closure() {
  local out
  out=$(rv64_apt_get -s -qq --no-install-recommends install "${@/%/:riscv64}" 2>&1) \
    || rv64_die "apt cannot resolve $*: $(grep -m1 '^E:' <<<"$out")"
  awk '$1 == "Inst" { sub(/^\(/, "", $3); print $2, $3 }' <<<"$out" | sort -u
}
