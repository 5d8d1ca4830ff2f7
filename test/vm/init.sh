#!/bin/busybox sh
# lxcfs-ts test VM, stage 1: the initramfs's /init (built by test/vm/run.mjs with busybox-static and the
# kernel modules listed in /modules/order). Loads virtio, 9p, overlay, fuse and ext4, mounts the host's root
# filesystem (virtio-9p, read-only) under a tmpfs overlay so the guest can write anywhere, mounts the run
# directory the host shares for this run (job in, results out), and switches to the overlay with busybox
# init as pid 1 (it reaps orphans, as a real init does). Stage 2 is test/vm/guest.sh, read from the host root.

/bin/busybox mkdir -p /proc /sys /dev /lower /rw /newroot
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "lxcfs-ts-vm: stage 1 failed: $*"
  poweroff -f
  sleep 5
  echo o > /proc/sysrq-trigger
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
exec </dev/console >/dev/console 2>&1

while read -r module; do
  insmod "/modules/$module" || fail "insmod $module"
done < /modules/order

# 9p: loose caching is safe (the root is read-only for the guest and a run is a snapshot) and it is what
# makes loading node_modules over 9p bearable; the run directory is read back by the host, so no cache there.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower || fail "mount the host root (9p)"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount tmpfs for the overlay"
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "mount the overlay root"

vm=/newroot/.lxcfs-ts-vm
mkdir -p "$vm/run"
cp /bin/busybox "$vm/busybox"
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 lxcfs_ts_run "$vm/run" || fail "mount the run directory (9p)"
[ -r "$vm/run/job.env" ] || fail "no job.env in the run directory"

printf '#!/bin/sh\n. /.lxcfs-ts-vm/run/job.env\nexec /bin/sh "$LXCFS_TS_VM_PROJECT/test/vm/guest.sh"\n' > "$vm/stage2"
chmod 755 "$vm/stage2"
printf '::sysinit:/.lxcfs-ts-vm/stage2\n' > /newroot/etc/inittab

for dir in dev proc sys; do
  mount --move "/$dir" "/newroot/$dir" || fail "move /$dir"
done
exec switch_root /newroot /.lxcfs-ts-vm/busybox init
