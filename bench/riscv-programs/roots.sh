# Sourced by bench/riscv-programs/run.sh: private roots of Debian trixie packages for one
# architecture (amd64 for the native runs, riscv64 for the emulated ones), from the same
# mirror and the same index, so both hold the same versions.
#
#   bench_root ARCH DIR PKG...   DIR holds PKG and everything it needs (apt's resolver on an
#                                empty system, no Recommends), unpacked with dpkg-deb into a
#                                merged-/usr tree (/bin, /sbin, /lib, /lib64 link into /usr).
#                                Nothing is done when DIR/.bench-packages names the same
#                                packages and is newer than this file (no network).
#
# The apt configuration is private (like scripts/lib/debian-riscv64.sh, which gives the
# mirror: rv64_mirror): it downloads .debs, installs nothing and leaves the host's apt alone.

bench_root_lib=${BASH_SOURCE[0]}

bench_root() {
  local arch=$1 dir=$2
  shift 2
  local want="$arch trixie: $*" stamp=$dir/.bench-packages
  if [ -f "$stamp" ] && [ "$stamp" -nt "$bench_root_lib" ] && [ "$(head -1 "$stamp")" = "$want" ]; then
    echo "$rv64_name: $arch root $dir is up to date" >&2
    return 0
  fi
  command -v apt-get >/dev/null || rv64_die "apt-get missing: building the $arch root needs a Debian host"
  rv64_need dpkg-deb dpkg
  local uri work apt tree closure
  uri=$(rv64_mirror)
  mkdir -p "$(dirname "$dir")"
  work=$(mktemp -d "$dir.work.XXXXXX")
  apt=$work/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc/preferences.d" "$work/debs"
  echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" \
    > "$apt/etc/sources.list"
  : > "$apt/status"
  local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt/etc/preferences.d"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::State::Status=$apt/status"
              -o "Dir::Cache=$apt/cache" -o "APT::Architecture=$arch"
              -o "APT::Architectures::=$arch" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  echo "$rv64_name: reading the $arch package index of Debian trixie ($uri)" >&2
  apt-get "${opts[@]}" -qq update || { rm -rf "$work"; rv64_die "apt-get update for trixie $arch failed"; }
  # The resolver, simulating an installation on an empty system, picks one package for each
  # alternative and virtual dependency; its "Inst NAME (VERSION ..." lines are the closure.
  local sim
  sim=$(apt-get "${opts[@]}" -s -qq --no-install-recommends install "${@/%/:$arch}" 2>&1) \
    || { rm -rf "$work"; rv64_die "apt cannot resolve $* for $arch: $(grep -m1 '^E:' <<<"$sim")"; }
  closure=$(awk '$1 == "Inst" { sub(/^\(/, "", $3); print $2, $3 }' <<<"$sim" | sort -u)
  echo "$rv64_name: downloading $(wc -l <<<"$closure") $arch packages" >&2
  (cd "$work/debs" && apt-get "${opts[@]}" -qq download $(awk '{ print $1 }' <<<"$closure")) \
    || { rm -rf "$work"; rv64_die "downloading the $arch packages failed"; }
  tree=$work/tree
  mkdir -p "$tree/usr/bin" "$tree/usr/sbin" "$tree/usr/lib" "$tree/usr/lib64" "$tree/etc" "$tree/tmp"
  local d deb
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$tree/$d"; done
  for deb in "$work"/debs/*.deb; do
    # --keep-directory-symlink: a package's ./lib/... goes through the /lib link into /usr/lib.
    dpkg-deb --fsys-tarfile "$deb" \
      | tar -x -C "$tree" --keep-directory-symlink --no-same-owner \
            --exclude=./usr/share/doc --exclude=./usr/share/man --exclude=./usr/share/locale \
      || { rm -rf "$work"; rv64_die "unpacking $(basename "$deb") failed"; }
  done
  { echo "$want"; echo "$closure"; } > "$tree/.bench-packages"
  rm -rf "$dir.old"
  if [ -e "$dir" ]; then mv "$dir" "$dir.old"; fi
  mv "$tree" "$dir"
  rm -rf "$dir.old" "$work"
  echo "$rv64_name: $arch root $dir ready ($(du -sm "$dir" | cut -f1) MB)" >&2
}

# bench_root_version DIR PKG: the version of PKG unpacked in DIR ("" when absent).
bench_root_version() {
  awk -v p="$2" 'NR > 1 && $1 == p { print $2 }' "$1/.bench-packages"
}
