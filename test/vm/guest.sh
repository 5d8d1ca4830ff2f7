#!/bin/sh
# lxcfs-ts test VM, stage 2: run by busybox init (pid 1) on the overlay root, with the job the host wrote
# (job.env: LXCFS_TS_VM_CGROUP, LXCFS_TS_VM_PROJECT, LXCFS_TS_VM_FILE_TIMEOUT) already sourced. Sets up what
# a container host has (tmpfs /tmp and /run, shared mount propagation, /dev/fuse, swap, a scratch disk) and
# the cgroup layout asked for, checks it, puts the project snapshot the host took (project.tar) in place,
# runs the test files (test/vm/guest-run.mjs) and powers off.
# Everything said on the console that the host acts on starts with "lxcfs-ts-vm: ".

VM=/.lxcfs-ts-vm
RUN=$VM/run
BB=$VM/busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp LANG=C.UTF-8

say() { echo "lxcfs-ts-vm: $*"; }
finish() {
  sync
  umount "$RUN"
  "$BB" poweroff -f
  sleep 10
  echo o > /proc/sysrq-trigger
}
fail() {
  say "setup failed: $*"
  echo "$*" > "$RUN/setup-failed"
  finish
  exit 1
}

# The project as it was when the run started (a shared checkout changes and gets rebuilt during a long
# run): unpacked into the overlay, with the host's node_modules bound inside, before the host's /tmp is
# covered (a checkout may live there, e.g. CI's fresh clone); mounted over the project's path further down.
project="$LXCFS_TS_VM_PROJECT"
snapshot=$VM/project
mkdir -p "$snapshot" && tar -xf "$RUN/project.tar" -C "$snapshot" || fail "unpack the project snapshot"
mkdir -p "$snapshot/node_modules"
mount --bind "$project/node_modules" "$snapshot/node_modules" || fail "bind $project/node_modules"

mount --make-rshared / || fail "make / shared"
mount -t tmpfs -o mode=1777 tmpfs /tmp || fail "mount /tmp"
mount -t tmpfs -o mode=0755 tmpfs /run || fail "mount /run"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm || fail "mount /dev/shm"
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
"$BB" hostname lxcfs-ts-vm
"$BB" ip link set lo up || fail "bring lo up"
[ -c /dev/fuse ] || fail "/dev/fuse missing"

# The host names its disks by serial: find them whatever order they enumerate in.
swap_dev= scratch_dev=
for block in /sys/block/vd*; do
  case "$(cat "$block/serial" 2>/dev/null)" in
    lxcfs-ts-swap) swap_dev=/dev/${block##*/} ;;
    lxcfs-ts-scratch) scratch_dev=/dev/${block##*/} ;;
  esac
done
[ -n "$swap_dev" ] || fail "no swap disk"
[ -n "$scratch_dev" ] || fail "no scratch disk"
mkswap -f "$swap_dev" >/dev/null || fail "mkswap $swap_dev"
swapon "$swap_dev" || fail "swapon $swap_dev"
scratch_dir=/mnt/lxcfs-ts-scratch
mkdir -p "$scratch_dir"
mount -t ext4 "$scratch_dev" "$scratch_dir" || fail "mount the scratch disk $scratch_dev"
chmod 1777 "$scratch_dir"

CG=/sys/fs/cgroup
probe=lxcfs-ts-vm-probe
case "$LXCFS_TS_VM_CGROUP" in
  v2)
    # As systemd mounts it on a pure v2 host. The tests run in the root cgroup, which may have processes
    # and enabled controllers at once, so they can make children of their own cgroup ("/") directly.
    mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 "$CG" || fail "mount cgroup2"
    echo "+cpuset +cpu +io +memory +pids" > "$CG/cgroup.subtree_control" || fail "enable controllers"
    mkdir "$CG/$probe" || fail "mkdir a probe cgroup"
    controllers=$(cat "$CG/$probe/cgroup.controllers")
    for c in cpuset cpu io memory pids; do
      case " $controllers " in *" $c "*) ;; *) rmdir "$CG/$probe"; fail "controller $c not available in a child cgroup (has: $controllers)" ;; esac
    done
    swap_accounting=no
    [ -e "$CG/$probe/memory.swap.max" ] && swap_accounting="yes (memory.swap.max)"
    rmdir "$CG/$probe"
    grep -q '^cgroup ' /proc/mounts && fail "a v1 hierarchy is mounted"
    layout="v2: cgroup2 on $CG, child controllers: $controllers"
    ;;
  v1)
    # As a systemd host in legacy mode has it: every controller on its own hierarchy, plus name=systemd,
    # and no cgroup2 mount anywhere.
    mount -t tmpfs -o mode=0755 cgroup "$CG" || fail "mount tmpfs on $CG"
    for c in cpu cpuacct cpuset memory blkio pids devices freezer; do
      mkdir "$CG/$c" && mount -t cgroup -o "$c" cgroup "$CG/$c" || fail "mount the v1 $c hierarchy"
    done
    mkdir "$CG/systemd" && mount -t cgroup -o none,name=systemd cgroup "$CG/systemd" || fail "mount name=systemd"
    mkdir "$CG/memory/$probe" || fail "mkdir a probe memory cgroup"
    swap_accounting=no
    [ -e "$CG/memory/$probe/memory.memsw.limit_in_bytes" ] && swap_accounting="yes (memory.memsw.*)"
    rmdir "$CG/memory/$probe"
    grep -q ' cgroup2 ' /proc/mounts && fail "cgroup2 is mounted"
    layout="v1: $(cd "$CG" && echo *) on $CG"
    ;;
  *) fail "unknown cgroup layout '$LXCFS_TS_VM_CGROUP'" ;;
esac
[ "$swap_accounting" = no ] && fail "no swap accounting in memory cgroups"

swap_kb=$(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo)
{
  echo "kernel: $(uname -r) ($(cat /proc/cmdline))"
  echo "cgroup $layout"
  echo "swap accounting: $swap_accounting"
  echo "swap: $swap_dev, $swap_kb kB"
  echo "scratch disk: $scratch_dev (ext4) on $scratch_dir"
  echo "/dev/fuse: $(ls -l /dev/fuse)"
  echo "cpus: $(nproc), memory: $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) kB"
} > "$RUN/layout.txt"
sed 's/^/lxcfs-ts-vm: /' "$RUN/layout.txt"

# For the live suites: a block device of their own to do I/O on (files under the directory, not the raw
# device, which holds that filesystem), and which layout they run on.
export LXCFS_TS_SCRATCH_DISK="$scratch_dir" LXCFS_TS_SCRATCH_DEV="$scratch_dev" LXCFS_TS_VM="$LXCFS_TS_VM_CGROUP"

mkdir -p "$project" || fail "mkdir $project"
mount --rbind "$snapshot" "$project" || fail "mount the project snapshot on $project"

say "guest up"
cd "$project" || fail "no project directory $project"
node test/vm/guest-run.mjs "$RUN"
finish
