#!/bin/sh
# The fresh-machine check: runs the README's test command on the committed
# tree inside a fresh Debian bookworm root, so that a package the project
# forgets to install fails here instead of passing on a machine where earlier
# work left it behind.
#
#   tests/fresh-check.sh [VAR=value ...]     (as root; also: make fresh-check)
#
# Arguments are passed to `make test` inside the root (T=supervise runs only
# the tests whose name has "supervise"). The root is what a new machine of this
# kind starts with: `debootstrap --variant=minbase` plus build-essential and git,
# the host's package sources, name resolution, CA bundle and npm settings (the
# network here inspects TLS with a CA that every such machine trusts). Nothing
# else: the project's own scripts must install the rest.
#
# The base root is built once and kept in $FRESH_CACHE (default
# /var/cache/pilot-agent-fresh); each run copies it, so no run sees what the
# one before installed. Downloaded .deb files are kept there too (they save
# the download, not the install). The suite runs in private mount and pid
# namespaces: every process it leaves behind dies with it, and nothing it
# mounts is seen outside. Prints the suite's last line and exits with its
# status; the whole output is kept in build/fresh-check.log, each test's log
# in build/fresh-check-logs/. FRESH_KEEP=1 keeps the root for a closer look.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${FRESH_CACHE:-/var/cache/pilot-agent-fresh}
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# A change to what goes into the base must change its name, or a cached base
# made by the old recipe would be used.
base=$cache/$suite-minbase-build-essential-git
log=$top/build/fresh-check.log

die() { echo "fresh-check: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts)"
command -v unshare >/dev/null || die "unshare (util-linux) is missing"
command -v git >/dev/null || die "git is missing"
git -C "$top" rev-parse --verify -q HEAD >/dev/null || die "$top has no commit to check"
if ! command -v debootstrap >/dev/null; then
	echo "fresh-check: installing debootstrap on this machine" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		debootstrap >/dev/null || die "cannot install debootstrap"
fi

mkdir -p "$cache/archives" "$top/build"

# The base: made once, in a scratch directory renamed into place only when
# whole, so an interrupted run never leaves a half-made base to be reused.
if [ ! -f "$base/.complete" ]; then
	echo "fresh-check: making the base root (debootstrap $suite, minbase)" >&2
	rm -rf "$base.tmp"
	debootstrap --variant=minbase --include=build-essential,git \
		--cache-dir="$cache/archives" "$suite" "$base.tmp" "$mirror" \
		>"$cache/debootstrap.log" 2>&1 ||
		die "debootstrap failed; see $cache/debootstrap.log"
	rm -f "$base.tmp"/var/cache/apt/archives/*.deb
	touch "$base.tmp/.complete"
	rm -rf "$base"
	mv "$base.tmp" "$base"
fi

work=$(mktemp -d /var/tmp/fresh-check.XXXXXX)
cleanup() {
	# The mounts lived in the suite's private namespace and went with it, so
	# this removes plain files only.
	if [ -n "${FRESH_KEEP:-}" ]; then
		echo "fresh-check: keeping $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

root=$work/root
echo "fresh-check: copying the base root" >&2
cp -a "$base" "$root"
rm -f "$root/.complete"

# What the machine itself provides, not packages: package sources, name
# resolution, the CA bundle (kept as a local CA as well, so that installing
# ca-certificates inside regenerates a bundle that still holds it) and npm's
# settings.
if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
	cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/"
	rm -f "$root/etc/apt/sources.list"
fi
[ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/sources.list"
for f in /etc/resolv.conf /etc/hosts; do
	[ -f "$f" ] && cp -L "$f" "$root$f"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
	mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
	cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
	cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-bundle.crt"
fi
for f in /root/.npmrc /etc/npmrc /usr/etc/npmrc; do
	[ -f "$f" ] && { mkdir -p "$root${f%/*}"; cp "$f" "$root$f"; }
done

# The committed tree, as a clone would have it.
mkdir -p "$root/src/pilot-agent"
git -C "$top" archive HEAD | tar -x -C "$root/src/pilot-agent"

echo "fresh-check: running 'make test $*' in the fresh root (log: $log)" >&2
set +e
# Inside: the root bound onto itself (ip netns needs its mounts to be
# shareable under a real mount point), /proc for the new pid namespace, the
# host's /dev and /sys, and tmpfs /run and /tmp. The environment is a
# login's, not this shell's. The shell stays as the namespace's PID 1, since
# make would not reap the orphans that a test's background jobs leave to it;
# when it exits, the kernel kills whatever the suite left running.
FRESH_ROOT=$root FRESH_ARCHIVES=$cache/archives \
unshare --mount --propagation private --pid --fork sh -eu -c '
	r=$FRESH_ROOT
	mount --bind "$r" "$r"
	mount -t proc proc "$r/proc"
	mount --rbind /dev "$r/dev"
	mount --rbind /sys "$r/sys"
	mount -t tmpfs -o mode=755 tmpfs "$r/run"
	mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
	mount --bind "$FRESH_ARCHIVES" "$r/var/cache/apt/archives"
	exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c "cd /src/pilot-agent && { make test \"\$@\" & wait \$!; }" make-test "$@"
' fresh-check "$@" >"$log" 2>&1
rc=$?
set -e
rm -rf "$top/build/fresh-check-logs"
if [ -d "$root/src/pilot-agent/build/test-logs" ]; then
	cp -r "$root/src/pilot-agent/build/test-logs" "$top/build/fresh-check-logs"
fi

if [ "$rc" != 0 ]; then
	# The failures' tails, as the runner printed them.
	sed -n '/^---- /,$p' "$log" | tail -n 200 >&2
fi
tail -n 1 "$log"
exit "$rc"
