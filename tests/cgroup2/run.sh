#!/usr/bin/env bash
# The cgroup tests on a kernel whose memory controller is cgroup v2's (docs/resources.md). This
# machine's is v1's and a cgroup2 mount here would have no memory controller, so this boots
# Debian 12's own kernel under qemu (software emulation: no KVM needed) with this machine's root
# file system shared read-only over 9p, mounts cgroup2 alone, and runs the given test binary there
# inside a group laid out as systemd lays out a unit with Delegate=yes
# (/system.slice/ptbuildd.service, the memory controller enabled down to it).
#   tests/cgroup2/run.sh [--group /] TEST_BINARY [DOCTEST ARGS…]
# --group puts the binary in another group: "/" (the root group, where processes and groups with
# controllers may live side by side) for a test binary that starts the daemon as its child.
# The kernel package is downloaded once (Debian's registry) into build/cgroup2-vm/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
group=/system.slice/ptbuildd.service
if [ "${1:-}" = --group ]; then
  group=$2
  shift 2
fi
binary=$(realpath "$1")
shift
cache="$root/build/cgroup2-vm"
mkdir -p "$cache"

for tool in qemu-system-x86_64 busybox; do
  command -v "$tool" >/dev/null || { echo "cgroup2-vm: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
# Debian's busybox-static: it runs before any library is there.
busybox=$(command -v busybox)

if [ ! -f "$cache/vmlinuz" ]; then
  kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
  unpacked=$(mktemp -d)
  download() { (cd "$unpacked" && apt-get download "$(kernel_package)" >/dev/null 2>&1); }
  # Package lists that are missing or older than the registry's: read them again, once.
  download || { apt-get update -qq >/dev/null 2>&1 && download; } ||
    { echo "cgroup2-vm: cannot download Debian's kernel package from its registry" >&2; rm -rf "$unpacked"; exit 1; }
  (cd "$unpacked" && dpkg-deb -x ./*.deb tree)
  rm -rf "$cache/modules" && mkdir -p "$cache/modules"  # whatever an interrupted run left
  # Only what mounting the host over virtio-9p (and a writable layer over it) needs, in the order
  # their dependencies give.
  for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev \
    drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/9p/9pnet net/9p/9pnet_virtio \
    fs/netfs/netfs fs/fscache/fscache fs/9p/9p fs/overlayfs/overlay; do
    cp "$unpacked"/tree/lib/modules/*/kernel/$m.ko "$cache/modules/"
    basename "$m" >> "$cache/modules/order"
  done
  cp "$unpacked"/tree/boot/vmlinuz-* "$cache/vmlinuz.part" && mv "$cache/vmlinuz.part" "$cache/vmlinuz"
  rm -rf "$unpacked"
fi

# The tests check that they measured with v2's files, not only with some cgroup; the sanitizer
# pass's settings go along.
sanitizers=""
for v in ASAN_OPTIONS UBSAN_OPTIONS; do
  [ -n "${!v:-}" ] && sanitizers+=" $v=${!v}"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/initrd/bin" "$work/initrd/proc" "$work/initrd/sys" "$work/initrd/dev" "$work/initrd/host"
cp "$busybox" "$work/initrd/bin/busybox"
cp -r "$cache/modules" "$work/initrd/modules"
{
  echo '#!/bin/busybox sh'
  echo '/bin/busybox --install -s /bin'
  echo 'mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev'
  echo 'for m in $(cat /modules/order); do insmod /modules/$m.ko || echo "cgroup2-vm: insmod $m failed"; done'
  # The host's files, read-only, under a layer in the VM's memory: what the tests write (a Nix
  # store's new paths, a daemon's state) stays in the VM. /tmp too: the binary may live there (a
  # clone in /tmp, as CI's).
  echo 'mkdir -p /lower /rw && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 host /lower || echo "cgroup2-vm: cannot mount the host"'
  echo 'mount -t tmpfs tmpfs /rw && mkdir /rw/upper /rw/work'
  echo 'mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /host || echo "cgroup2-vm: no writable layer"'
  echo 'mount -t proc proc /host/proc && mount -t sysfs sys /host/sys && mount -t devtmpfs dev /host/dev'
  echo 'mkdir -p /host/dev/pts && mount -t devpts devpts /host/dev/pts'
  echo 'mount -t cgroup2 cgroup2 /host/sys/fs/cgroup'
  echo 'cg=/host/sys/fs/cgroup'
  echo 'echo "+memory +cpu" > $cg/cgroup.subtree_control && mkdir $cg/system.slice'
  echo 'echo "+memory +cpu" > $cg/system.slice/cgroup.subtree_control && mkdir $cg/system.slice/ptbuildd.service'
  echo 'echo "cgroup2-vm: kernel $(uname -r), $(cat /proc/self/mountinfo | grep -c " - cgroup ") cgroup v1 mounts"'
  printf 'sh -c "echo \\$\\$ > $cg%s/cgroup.procs && exec chroot /host /usr/bin/env -i -C /tmp PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root PTBUILD_TEST_CGROUP=v2%s %q' "${group%/}" "$sanitizers" "$binary"
  for a in "$@"; do printf ' %q' "$a"; done
  echo '"'
  echo 'echo "cgroup2-vm: exit $?"'
  echo 'poweroff -f'
} > "$work/initrd/init"
chmod +x "$work/initrd/init"
(cd "$work/initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "$work/initrd.gz")

# Every loop is bounded: the VM is killed after 10 minutes.
timeout 600 qemu-system-x86_64 -machine q35 -cpu max -smp 2 -m 3072 -nographic -no-reboot \
  -kernel "$cache/vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
  -virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
  < /dev/null > "$work/console" 2>&1 || true
# What the VM printed from the moment it started the tests (not the firmware's screen).
sed -n '/cgroup2-vm: kernel/,$p' "$work/console"
status=$(grep -a -o "cgroup2-vm: exit [0-9]*" "$work/console" | awk '{print $3}')
[ -n "$status" ] || { echo "cgroup2-vm: the tests did not run to their end in the VM" >&2; exit 1; }
exit "$status"
