#!/usr/bin/env bash
# An LXC container keeps reading its lxcfs-ts files across daemon restarts, without being restarted.
# Not part of `npm test`; run by hand as root after `npm ci`: see README.md beside this file.
#
#   sudo test/runtimes/restart-lxc.sh
#
#  1. installs lxc and debootstrap if missing, and makes each container's rootfs from a debootstrapped
#     Debian bookworm (cached in $WORK/base-bookworm.tar);
#  2. starts lxcfs-ts on a private mountpoint and a container (lxc-start; no network, memory limit 256 MiB,
#     cpuset of CPU 1, cgroups under this shell's own) whose files are bound by hooks/lxc.mount.hook,
#     included through hooks/00-lxcfs-ts.conf as docs/lxc.md says, and checks what it reads: free,
#     /proc/meminfo, nproc, /proc/cpuinfo, /proc/uptime, top, ls /sys/devices/system/cpu;
#  3. restarts the daemon three ways (SIGTERM + start, SIGKILL + start, SIGKILL + start --no-reattach +
#     `lxcfs-ts reattach`), and after each checks the same reads in the same container, the log's
#     re-attach line for its init, and that a reader looping in it failed only while no daemon ran;
#  4. while no daemon runs (after the SIGTERM), starts a second container, and checks what it reads and
#     what the next daemon does with it;
#  5. stops and removes its containers (their cgroups go with them), mounts and files. One line per
#     check, then "N passed, N failed"; exits 1 if a check failed.

set -uo pipefail
# shellcheck source=test/runtimes/lib.sh
. "$(dirname "$0")/lib.sh"

need_packages lxc-start:lxc debootstrap:debootstrap
mkdir -p "$WORK" "$RUN"
LXCPATH=$RUN/lxc
NAME_PREFIX=lxcfs-ts-test-$$
A=$NAME_PREFIX-a
B=$NAME_PREFIX-b

cleanup() {
  say "cleaning up"
  local n
  for n in "$A" "$B"; do
    [ -d "$LXCPATH/$n" ] || continue
    lxc-stop -P "$LXCPATH" -n "$n" -k >/dev/null 2>&1
    lxc-destroy -P "$LXCPATH" -n "$n" >/dev/null 2>&1
  done
  cleanup_daemon
  # LXC leaves an empty lxc.pivot cgroup (where it parks its monitor while removing the container's)
  # beside the containers' cgroups in every hierarchy: remove those this run made.
  [ -f "$RUN/pivots-before" ] && find /sys/fs/cgroup -type d -name lxc.pivot -prune 2>/dev/null | while read -r d; do
    grep -qxF "$d" "$RUN/pivots-before" || rmdir "$d" 2>/dev/null
  done
  rm -rf "$RUN"
}
trap cleanup EXIT

tarball=$(base_tarball)
find /sys/fs/cgroup -type d -name lxc.pivot -prune >"$RUN/pivots-before" 2>/dev/null

# The hooks as docs/lxc.md installs them: 00-lxcfs-ts.conf with this checkout for /opt/lxcfs-ts, and the
# mount hook through the two-line wrapper docs/lxc.md gives for a mountpoint other than /var/lib/lxcfs.
printf '#!/bin/sh\nexport LXCFS_TS_MOUNT=%s\nexec %s/hooks/lxc.mount.hook "$@"\n' "$MOUNT" "$ROOT" >"$RUN/mount-hook"
chmod +x "$RUN/mount-hook"
sed -e "s|/opt/lxcfs-ts/hooks/lxc.mount.hook|$RUN/mount-hook|" -e "s|/opt/lxcfs-ts|$ROOT|" \
  "$ROOT/hooks/00-lxcfs-ts.conf" >"$RUN/00-lxcfs-ts.conf"

# The memory limit and cpuset: v1 keys where the memory controller is a v1 hierarchy (v1 and hybrid
# hosts), cgroup2 keys on a pure cgroup2 host.
if [ -d /sys/fs/cgroup/memory ]; then
  limits="lxc.cgroup.memory.limit_in_bytes = $LIMIT_BYTES
lxc.cgroup.cpuset.cpus = $CPU"
else
  limits="lxc.cgroup2.memory.max = $LIMIT_BYTES
lxc.cgroup2.cpuset.cpus = $CPU"
fi
# make_container NAME: its rootfs and config under $LXCPATH.
make_container() {
  mkdir -p "$LXCPATH/$1/rootfs"
  tar -C "$LXCPATH/$1/rootfs" -xf "$tarball" || die "cannot unpack $tarball"
  cat >"$LXCPATH/$1/config" <<EOF
lxc.uts.name = $1
lxc.rootfs.path = dir:$LXCPATH/$1/rootfs
lxc.net.0.type = empty
lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed
lxc.autodev = 1
lxc.tty.max = 0
lxc.pty.max = 16
lxc.console.path = none
lxc.init.cmd = /bin/sleep infinity
# Under this shell's own cgroups, not LXC's default of the root cgroup.
lxc.cgroup.relative = 1
$limits
lxc.log.file = $RUN/$1.log
lxc.log.level = INFO
lxc.include = $RUN/00-lxcfs-ts.conf
EOF
}
# start_container NAME: lxc-start it and wait until it runs; prints LXC's error, if any.
start_container() {
  lxc-start -P "$LXCPATH" -n "$1" 2>&1 && lxc-wait -P "$LXCPATH" -n "$1" -s RUNNING -t 30 2>&1
}
ct_sh() { lxc-attach -P "$LXCPATH" -n "$1" --clear-env --set-var PATH=/usr/sbin:/usr/bin:/sbin:/bin -- sh -c "$2"; }
ct_pid() { lxc-info -P "$LXCPATH" -n "$1" -pH; }
host_memtotal=$(grep ^MemTotal: /proc/meminfo | tr -s ' ')

say "lxcfs-ts on $MOUNT (logs in $RUN)"
start_daemon || die "lxcfs-ts does not serve: $(tail -5 "$DAEMON_LOG")"
make_container "$A"
make_container "$B"
CT_STARTED[$A]=$(date +%s.%N)
err=$(start_container "$A") || die "lxc-start $A failed: $err; see $RUN/$A.log"
say "$A: lxc-start, memory limit $LIMIT_BYTES, cpuset $CPU, init pid $(ct_pid "$A")"
say "$A: mounted by the hook: $(ct_sh "$A" 'grep -F lxcfs-ts /proc/self/mountinfo | cut -d" " -f5' 2>&1 | tr '\n' ' ')"
check_view "$A" "first daemon"
start_reader "$A"
mark "$A" start

# While no daemon serves (after the SIGTERM), B starts: the mount hook finds no served meminfo, binds
# nothing and lets B start with the host's files (docs/lxc.md, "What the hook mounts", 1).
while_down() {
  [ "$1" = term ] || return 0
  local err
  CT_STARTED[$B]=$(date +%s.%N)
  if err=$(start_container "$B"); then ok "no daemon: lxc-start $B starts"; else notok "no daemon: lxc-start $B failed: $err"; return 0; fi
  check "no daemon: $B reads the host's MemTotal (the hook bound nothing)" "$host_memtotal" "$(ct_sh "$B" 'grep ^MemTotal: /proc/meminfo' 2>&1 | tr -s ' ')"
  say "no daemon: $MOUNT holds: $(find "$MOUNT" -mindepth 1 2>&1 | head -5 | tr '\n' ' ')"
}
after_start() {
  [ "$1" = term ] || return 0
  local pid
  pid=$(ct_pid "$B")
  check "$1: lines of the new daemon's log naming $B's init pid $pid (it has no lxcfs-ts mount)" 0 "$(grep -cE "\"pid\":${pid}[,}]" "$DAEMON_LOG")"
  check "$1: $B, started while no daemon ran, still reads the host's MemTotal" "$host_memtotal" "$(ct_sh "$B" 'grep ^MemTotal: /proc/meminfo' 2>&1 | tr -s ' ')"
  # What the user does next (docs/lxc.md): restart B, whose mount hook now binds the files.
  lxc-stop -P "$LXCPATH" -n "$B" -k >/dev/null 2>&1
  CT_STARTED[$B]=$(date +%s.%N)
  if err=$(start_container "$B"); then check_view "$B" "$1: $B restarted"; else notok "$1: lxc-start $B again failed: $err"; fi
  lxc-stop -P "$LXCPATH" -n "$B" -k >/dev/null 2>&1
}

restart_daemon term "$A"
restart_daemon kill "$A"
restart_daemon kill-noreattach "$A"
reader_final "$A"

finish
