#!/usr/bin/env bash
# Put a berth data root on btrfs when the machine's disks are not: a sparse
# image file, formatted btrfs, attached to a loop device and mounted on the
# data root. See docs/storage-drivers.md.
#
#   scripts/btrfs-dataroot.sh up [-s SIZE] [-i IMAGE] DATA_ROOT
#   scripts/btrfs-dataroot.sh down [-i IMAGE] DATA_ROOT
#   scripts/btrfs-dataroot.sh demo        (make demo-btrfs: all of it in a temp dir)
#
# IMAGE defaults to DATA_ROOT.btrfs.img beside the data root, SIZE to 20G
# (sparse: the file uses only what is written). Run as root.
set -euo pipefail

die() { echo "btrfs-dataroot: $*" >&2; exit 1; }

usage() {
	sed -n '6,8p' "$0" | sed 's/^# *//' >&2
	exit 2
}

# up SIZE IMAGE DATA_ROOT
up() {
	local size=$1 img=$2 root=$3 dev
	command -v mkfs.btrfs >/dev/null || die "mkfs.btrfs not found: install btrfs-progs"
	mkdir -p "$root"
	if mountpoint -q "$root"; then
		[ "$(stat -f -c %T "$root")" = btrfs ] || die "$root is already a mount point, and not btrfs"
		echo "$root is already on btrfs"
		return
	fi
	[ -z "$(ls -A "$root")" ] || die "$root is not empty: move its contents away first, the mount would hide them"
	if [ ! -e "$img" ]; then
		truncate -s "$size" "$img"
		mkfs.btrfs -q -L berth "$img" >/dev/null
	fi
	dev=$(losetup --find --show "$img")
	if ! mount -t btrfs -o noatime "$dev" "$root"; then
		losetup --detach "$dev"
		die "mount $dev on $root failed"
	fi
	echo "mounted $img ($dev) on $root"
	echo "to mount it at boot, add to /etc/fstab:"
	echo "  $img $root btrfs loop,noatime 0 0"
}

# down IMAGE DATA_ROOT: unmount and detach; the image file is kept.
down() {
	local img=$1 root=$2 dev
	if mountpoint -q "$root"; then
		umount "$root"
	fi
	for dev in $(losetup --associated "$img" --output NAME --noheadings); do
		losetup --detach "$dev"
	done
	echo "unmounted $root; $img is kept (delete it to free the space)"
}

demo_cleanup() {
	if [ -n "$demo_pid" ]; then
		kill "$demo_pid" 2>/dev/null || true
		wait "$demo_pid" 2>/dev/null || true
	fi
	down "$demo_dir/data.img" "$demo_dir/data" >/dev/null || true
	rm -rf "$demo_dir"
}

demo() {
	cd "$(dirname "$0")/.."
	berth=bin/berth
	[ -x "$berth" ] || die "build first: make build"
	# Globals: the EXIT trap runs after demo has returned.
	demo_dir=$(mktemp -d /tmp/berth-btrfs-demo.XXXXXX) demo_pid=
	trap demo_cleanup EXIT
	local dir=$demo_dir
	local root=$dir/data host=unix://$dir/berth.sock
	run() { echo "+ berth $*"; "$berth" -H "$host" "$@"; }

	up 4G "$dir/data.img" "$root"
	echo '{}' >"$dir/daemon.json"
	echo "+ berth daemon --storage-driver btrfs --data-root $root"
	"$berth" daemon --storage-driver btrfs --data-root "$root" --exec-root "$dir/exec" -H "$host" \
		--config-file "$dir/daemon.json" >"$dir/daemon.log" 2>&1 </dev/null &
	demo_pid=$!
	for _ in $(seq 1 100); do
		"$berth" -H "$host" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$berth" -H "$host" version >/dev/null || { cat "$dir/daemon.log" >&2; die "daemon did not come up"; }

	echo "+ bin/mkbusybox | berth import -c 'CMD [\"sh\"]' - busybox:latest"
	bin/mkbusybox | "$berth" -H "$host" import -c 'CMD ["sh"]' - busybox:latest
	run images
	run info --format 'Storage Driver: {{.Driver}}{{range .DriverStatus}}{{println}} {{index . 0}}: {{index . 1}}{{end}}'
	run system df -v
	echo "+ btrfs subvolume list $root"
	btrfs subvolume list "$root"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
size=20G img=
while getopts "s:i:" opt; do
	case $opt in
	s) size=$OPTARG ;;
	i) img=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ "$(id -u)" = 0 ] || die "run as root: it formats, attaches and mounts"
case $cmd in
up | down)
	[ $# = 1 ] || usage
	root=$(realpath -m "$1")
	img=${img:-$root.btrfs.img}
	if [ "$cmd" = up ]; then up "$size" "$img" "$root"; else down "$img" "$root"; fi
	;;
demo) demo ;;
*) usage ;;
esac
