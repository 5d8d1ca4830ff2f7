#!/usr/bin/env bash
# A Docker container keeps reading its lxcfs-ts files across daemon restarts, without being restarted.
# Not part of `npm test`; run by hand as root after `npm ci`: see README.md beside this file.
#
#   sudo test/runtimes/restart-docker.sh        # KEEP_IMAGES=1 keeps the image
#
#  1. installs docker.io and debootstrap if missing, starts dockerd unless one runs (--iptables=false
#     --bridge=none, containers under this shell's cgroups; every container runs with --network none),
#     and imports a debootstrapped Debian bookworm (cached in $WORK/base-bookworm.tar) as the image;
#  2. starts lxcfs-ts on a private mountpoint and a container with -m 256m --cpuset-cpus 1 and -v binds of
#     the eight /proc files runc allows and /sys/devices/system/cpu (docs/docker.md), and checks what it
#     reads: free, /proc/meminfo, nproc, /proc/cpuinfo, /proc/uptime, top, ls /sys/devices/system/cpu;
#  3. restarts the daemon three ways (SIGTERM + start, SIGKILL + start, SIGKILL + start --no-reattach +
#     `lxcfs-ts reattach`), and after each checks the same reads in the same container, the log's
#     re-attach line for its init, and that a reader looping in it failed only while no daemon ran;
#  4. while no daemon runs, starts more containers (after the SIGTERM: every -v bind, and the cpu
#     directory's alone; after the SIGKILL: every -v bind), and checks what Docker does, what the next
#     daemon does with the placeholders Docker made, and that they start once it serves;
#  5. removes its containers, image (unless KEEP_IMAGES=1), mounts and cgroups, and stops the dockerd it
#     started. One line per check, then "N passed, N failed"; exits 1 if a check failed.

set -uo pipefail
# shellcheck source=test/runtimes/lib.sh
. "$(dirname "$0")/lib.sh"

TAG=lxcfs-ts-runtimes-$$
IMAGE=lxcfs-ts-runtimes-debian:$TAG

need_packages dockerd:docker.io debootstrap:debootstrap
mkdir -p "$WORK" "$RUN"

started_dockerd=
cgroup_parent=
if ! docker info >/dev/null 2>&1; then
  # Containers go under this shell's own cgroups, not beside them.
  own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
  [ -n "$own" ] || own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
  cgroup_parent=${own%/}/$TAG
  say "starting dockerd (log: $RUN/dockerd.log, cgroup parent $cgroup_parent)"
  dockerd --iptables=false --ip-masq=false --bridge=none --cgroup-parent="$cgroup_parent" \
    --pidfile "$RUN/dockerd.pid" >"$RUN/dockerd.log" 2>&1 &
  started_dockerd=$!
  wait_for 100 eval 'docker info >/dev/null 2>&1' || die "dockerd did not start; see $RUN/dockerd.log"
fi

cleanup() {
  say "cleaning up"
  docker ps -aq --filter "label=$TAG" | xargs -r docker rm -f >/dev/null
  cleanup_daemon
  [ "$KEEP_IMAGES" = 1 ] || docker rmi -f "$IMAGE" >/dev/null 2>&1
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null
    wait "$started_dockerd" 2>/dev/null
    # The cgroups runc made under ours (in hierarchies where ours is the root, the whole path was made
    # for them): deepest first, and only empty ones.
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
      [ -d "$h${cgroup_parent#/}" ] || continue
      find "$h${cgroup_parent#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
      d=$(dirname "$h${cgroup_parent#/}")
      while [ "${#d}" -gt "${#h}" ] && [ -z "$(cat "$d/cgroup.procs" 2>/dev/null)" ] && rmdir "$d" 2>/dev/null; do d=$(dirname "$d"); done
    done
  fi
  rm -rf "$RUN"
}
trap cleanup EXIT

docker import "$(base_tarball)" "$IMAGE" >/dev/null || die "docker import failed"

ct_sh() { docker exec "$1" sh -c "$2"; }
ct_pid() { docker inspect -f '{{.State.Pid}}' "$1"; }
binds=()
for f in cpuinfo diskstats meminfo stat swaps uptime loadavg slabinfo; do binds+=(-v "$MOUNT/proc/$f:/proc/$f:rw"); done
binds+=(-v "$MOUNT/sys/devices/system/cpu:/sys/devices/system/cpu:rw")
# run_container NAME: docker run as docs/docker.md shows; prints docker's error, if any.
run_container() {
  { docker run -d --name "$1" --label "$TAG" --network none -m $((LIMIT_BYTES / 1048576))m --cpuset-cpus "$CPU" \
    "${binds[@]}" "$IMAGE" sleep infinity >/dev/null; } 2>&1
}

say "lxcfs-ts on $MOUNT (logs in $RUN)"
start_daemon || die "lxcfs-ts does not serve: $(tail -5 "$DAEMON_LOG")"
A=$TAG-a
CT_STARTED[$A]=$(date +%s.%N)
err=$(run_container "$A") || die "docker run $A failed: $err"
say "$A: docker run -m 256m --cpuset-cpus $CPU, init pid $(ct_pid "$A")"
check_view "$A" "first daemon"
start_reader "$A"
mark "$A" start

# While no daemon serves (after the SIGTERM the mountpoint is an empty directory):
# - B, with every -v bind of docs/docker.md: -v makes each missing source a directory, and runc refuses
#   to bind a directory over a /proc file, so B does not start (docs/docker.md says so);
# - C, with only the /sys/devices/system/cpu bind: a directory over a directory, so C starts, with an
#   empty placeholder directory as its cpu directory. The next daemon leaves C alone and says so.
B=$TAG-b
C=$TAG-c
# - D, after the SIGKILL (a dead mount on the mountpoint), with every -v bind: Docker cannot even look at
#   the sources; noted, and D is started again once the next daemon serves.
D=$TAG-d
while_down() {
  local err
  if [ "$1" = kill ]; then
    err=$(run_container "$D")
    say "no daemon, dead mount: docker run $D with every -v bind: ${err:-started}"
    return 0
  fi
  [ "$1" = term ] || return 0
  err=$(run_container "$B")
  case $err in
  *"not a directory"*) ok "no daemon: docker run $B with every -v bind fails: ${err%%$'\n'*}" ;;
  *) notok "no daemon: docker run $B with every -v bind: expected 'not a directory', got '${err:-started}'" ;;
  esac
  CT_STARTED[$C]=$(date +%s.%N)
  err=$({ docker run -d --name "$C" --label "$TAG" --network none -m $((LIMIT_BYTES / 1048576))m --cpuset-cpus "$CPU" \
    -v "$MOUNT/sys/devices/system/cpu:/sys/devices/system/cpu:rw" "$IMAGE" sleep infinity >/dev/null; } 2>&1)
  if [ -z "$err" ]; then ok "no daemon: docker run $C with the cpu directory bind only starts"; else notok "no daemon: docker run $C failed: $err"; fi
  say "no daemon: Docker left in $MOUNT: $(cd "$MOUNT" && find . -mindepth 1 -printf '%y %p, ' | head -c 600)"
  say "no daemon: $C reads (ls /sys/devices/system/cpu | its online): $(ct_sh "$C" 'ls /sys/devices/system/cpu | wc -l; cat /sys/devices/system/cpu/online' 2>&1 | tr '\n' '|')"
}
after_start() {
  if [ "$1" = kill ]; then
    if docker start "$D" >/dev/null; then
      check "$1: $D (failed on the dead mount), docker start: MemTotal" "MemTotal: $((LIMIT_BYTES / 1024)) kB" "$(ct_sh "$D" 'grep ^MemTotal: /proc/meminfo' 2>&1 | tr -s ' ')"
    else notok "$1: docker start $D fails with the daemon serving again"; fi
    docker rm -f "$D" >/dev/null
    return 0
  fi
  [ "$1" = term ] || return 0
  local line pid
  line=$(log_msg 'the mountpoint holds empty placeholders a container runtime made while no daemon served: mounting over them')
  if [ -n "$line" ]; then ok "$1: the daemon started over Docker's placeholders, with the 'empty placeholders' warning"; else
    notok "$1: no 'empty placeholders' warning in $DAEMON_LOG"
  fi
  echo "$line" | cut -c1-300 | sed 's/^/#   log: /'
  pid=$(ct_pid "$C")
  line=$(log_for_pid 'container started while no daemon served: its binds are placeholders, left alone (restart it to get the files)' "$pid")
  if [ -n "$line" ]; then ok "$1: the log has $C (init pid $pid) as left alone"; else
    notok "$1: no 'left alone' line for $C's init pid $pid in $DAEMON_LOG: $(grep -i 'placeholders' "$DAEMON_LOG" | cut -c1-300 | tr '\n' '|')"
  fi
  echo "$line" | cut -c1-400 | sed 's/^/#   log: /'
  say "$C, left alone, reads (ls /sys/devices/system/cpu | its online | nproc): $(ct_sh "$C" 'ls /sys/devices/system/cpu | wc -l; cat /sys/devices/system/cpu/online; nproc' 2>&1 | tr '\n' '|')"
  # What the user does next: docker start B, docker restart C.
  CT_STARTED[$B]=$(date +%s.%N)
  if docker start "$B" >/dev/null; then ok "$1: docker start $B (failed while no daemon ran) now starts"; check_view "$B" "$1: $B started again"; else
    notok "$1: docker start $B fails with the daemon serving again"; fi
  CT_STARTED[$C]=$(date +%s.%N)
  if docker restart -t 0 "$C" >/dev/null; then
    check "$1: $C after docker restart: cpuN directories in ls /sys/devices/system/cpu" 1 "$(ct_sh "$C" 'ls /sys/devices/system/cpu | grep -c "^cpu[0-9]"' 2>&1)"
  else notok "$1: docker restart $C fails"; fi
  docker rm -f "$B" "$C" >/dev/null
}

restart_daemon term "$A"
restart_daemon kill "$A"
restart_daemon kill-noreattach "$A"
reader_final "$A"

finish
