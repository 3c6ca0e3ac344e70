#!/usr/bin/env bash
# The reference guest: Debian 12's stock kernel (what linux-image-amd64 resolves to) and
# busybox-static, in an initramfs whose /init prints a marker, runs the workload (md5sum of
# 64 MiB of /dev/zero, a 20,000-iteration shell loop), then gives an interactive shell on the
# console and powers off when it exits.
#
#   scripts/debian-guest.sh fetch   download and build once (cached), print the two paths
#   scripts/debian-guest.sh boot    fetch, build softvisor, boot the guest on this terminal
#
# Packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` (no root
# install). Where apt does not know Debian's packages (Ubuntu), the .debs come straight from
# deb.debian.org. The initramfs is written in newc format by this script, so neither cpio nor
# root (for /dev/console) is needed. Everything lands in $SOFTVISOR_GUEST_DIR (default:
# target/debian-guest) and later runs fetch nothing.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${SOFTVISOR_GUEST_DIR:-$repo/target/debian-guest}"

die() { echo "debian-guest: $*" >&2; exit 1; }

# Whether apt knows Debian's package (SOFTVISOR_GUEST_NO_APT=1 forces the direct download,
# which is what an Ubuntu host does).
apt_has() {
  [ -z "${SOFTVISOR_GUEST_NO_APT:-}" ] && apt-cache show "$1" >/dev/null 2>&1
}

# apt's answer for what a package depends on (the versioned kernel of linux-image-amd64).
apt_depends() {
  apt-cache depends "$1" 2>/dev/null | awk '/Depends:/ { print $2; exit }'
}

# Without Debian sources in apt, Debian 12's package indexes are read directly: the
# release, its updates and its security suite, as a Debian 12 apt would see them.
indexes=(
  "http://deb.debian.org/debian bookworm"
  "http://deb.debian.org/debian bookworm-updates"
  "http://deb.debian.org/debian-security bookworm-security"
)

# The local copy of index $1 (a line of $indexes), fetched once.
index_file() {
  local base suite file
  read -r base suite <<<"$1"
  file="$cache/Packages-$suite"
  if [ ! -s "$file" ]; then
    curl -fsSL "$base/dists/$suite/main/binary-amd64/Packages.xz" | xz -d >"$file.tmp" \
      || die "cannot fetch the $suite package index"
    mv "$file.tmp" "$file"
  fi
  echo "$file"
}

# A field of a package in an index file.
index_field() {
  awk -v p="$2" -v f="$3:" '
    /^Package: / { hit = ($2 == p) }
    hit && $1 == f { sub(/^[^ ]+ /, ""); print; exit }' "$1"
}

# The index line holding the highest version of package $1.
best_index() {
  local best="" best_version="" line version
  for line in "${indexes[@]}"; do
    version="$(index_field "$(index_file "$line")" "$1" Version)"
    [ -n "$version" ] || continue
    if [ -z "$best_version" ] || dpkg --compare-versions "$version" gt "$best_version"; then
      best="$line" best_version="$version"
    fi
  done
  [ -n "$best" ] || die "$1 is not in Debian 12"
  echo "$best"
}

# Prints "URL" of the newest .deb of package $1.
debian_url() {
  local line base
  line="$(best_index "$1")"
  base="${line%% *}"
  echo "$base/$(index_field "$(index_file "$line")" "$1" Filename)"
}

# What the newest linux-image-amd64 depends on: the versioned kernel package.
debian_kernel_depends() {
  local line
  line="$(best_index linux-image-amd64)"
  index_field "$(index_file "$line")" linux-image-amd64 Depends | sed 's/[ ,(].*//'
}

# Downloads the .deb of $1 into $cache/debs and prints its path.
download() {
  local package="$1" debs="$cache/debs"
  mkdir -p "$debs"
  local have
  have="$(ls "$debs/${package}_"*.deb 2>/dev/null | head -n1 || true)"
  if [ -n "$have" ]; then echo "$have"; return; fi
  if apt_has "$package"; then
    (cd "$debs" && apt-get download -q "$package" >&2) || die "apt-get download $package failed"
  else
    local url
    url="$(debian_url "$package")"
    curl -fsSL -o "$debs/$(basename "$url")" "$url" || die "download of $url failed"
  fi
  ls "$debs/${package}_"*.deb | head -n1
}

kernel_package() {
  local dep
  if apt_has linux-image-amd64; then
    dep="$(apt_depends linux-image-amd64)"
  else
    dep="$(debian_kernel_depends)"
  fi
  [ -n "$dep" ] || die "cannot resolve linux-image-amd64"
  echo "$dep"
}

# --- newc cpio writer -------------------------------------------------------------------
ino=100
# cpio_entry MODE NAME [FILE] [RDEV_MAJOR RDEV_MINOR]: one newc header, name and data.
cpio_entry() {
  local mode="$1" name="$2" file="${3:-}" major="${4:-0}" minor="${5:-0}" size=0
  [ -n "$file" ] && size="$(stat -c %s "$file")"
  ino=$((ino + 1))
  local namesize=$(( ${#name} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$mode" 0 0 1 0 "$size" 0 0 "$major" "$minor" "$namesize" 0
  printf '%s\0' "$name"
  # Header (110 bytes) plus name, padded to 4.
  local pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  head -c "$pad" /dev/zero
  if [ -n "$file" ]; then
    cat "$file"
    head -c $(( (4 - size % 4) % 4 )) /dev/zero
  fi
}

write_init() {
  cat >"$1" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "softvisor-guest: init reached"
echo "softvisor-guest: md5 $(dd if=/dev/zero bs=1048576 count=64 2>/dev/null | md5sum)"
i=0
while [ "$i" -lt 20000 ]; do i=$((i + 1)); done
echo "softvisor-guest: loop $i"
echo "softvisor-guest: workload done"
setsid cttyhack sh
echo "softvisor-guest: shell exited, powering off"
poweroff -f
EOF
}

build_initramfs() {
  local busybox_deb="$1" out="$2" work
  work="$(mktemp -d)"
  dpkg-deb -x "$busybox_deb" "$work/bb"
  write_init "$work/init"
  {
    for dir in bin dev proc sys tmp; do cpio_entry $((0040755)) "$dir"; done
    cpio_entry $((0020600)) dev/console "" 5 1
    cpio_entry $((0100755)) bin/busybox "$work/bb/bin/busybox"
    cpio_entry $((0100755)) init "$work/init"
    cpio_entry 0 TRAILER!!!
  } | gzip -9n >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$work"
}

fetch() {
  mkdir -p "$cache"
  local kernel="$cache/vmlinuz" initrd="$cache/initramfs.cpio.gz"
  if [ ! -s "$kernel" ]; then
    local pkg deb tmp
    pkg="$(kernel_package)"
    deb="$(download "$pkg")"
    tmp="$(mktemp -d)"
    dpkg-deb -x "$deb" "$tmp"
    cp "$tmp"/boot/vmlinuz-* "$kernel.tmp" && mv "$kernel.tmp" "$kernel"
    echo "$pkg" >"$cache/kernel-package"
    rm -rf "$tmp" "$deb"
  fi
  if [ ! -s "$initrd" ] || [ "$0" -nt "$initrd" ]; then
    build_initramfs "$(download busybox-static)" "$initrd"
  fi
  echo "$kernel"
  echo "$initrd"
}

case "${1:-boot}" in
  fetch)
    fetch
    ;;
  boot)
    shift || true
    mapfile -t paths < <(fetch)
    cargo build --release --manifest-path "$repo/Cargo.toml" -q
    pace=()
    # At a terminal, an idle guest waits in real time rather than racing its timers.
    if [ -t 0 ]; then pace=(--pace); fi
    exec "$repo/target/release/softvisor" run --kernel "${paths[0]}" --initrd "${paths[1]}" \
      "${pace[@]}" "$@"
    ;;
  *)
    die "usage: $0 fetch|boot [softvisor run options]"
    ;;
esac
