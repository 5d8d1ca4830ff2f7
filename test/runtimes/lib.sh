# shellcheck shell=bash
# Shared by restart-lxc.sh and restart-docker.sh (sourced, not run): counters and checks, the cached
# Debian rootfs, the lxcfs-ts daemon (start, stop, log), the in-container reader and the checks of what a
# container sees. Each script defines, before calling the container functions:
#   ct_sh NAME SCRIPT    run `sh -c SCRIPT` inside container NAME (stdout and stderr of SCRIPT)
#   ct_pid NAME          the host pid of container NAME's init
# See README.md beside this file.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=${LXCFS_TS_RUNTIMES_WORK:-/var/tmp/lxcfs-ts-runtimes}
KEEP_IMAGES=${KEEP_IMAGES:-0}
RUN=$WORK/run-$$                     # everything of this run: logs, pid file, rootfs copies
MOUNT=${LXCFS_TS_TEST_MOUNT:-/var/lib/lxcfs-ts-test-$$}
PIDFILE=$RUN/lxcfs-ts.pid
LIMIT_BYTES=268435456                # the containers' memory limit, 256 MiB
CPU=${LXCFS_TS_TEST_CPU:-1}          # the containers' cpuset: this one CPU
STARTED_AT=$(date +%s)

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1: $3"; else notok "$1: expected '$2', got '$3'"; fi
}
say() { echo "# $*"; }
die() { echo "$(basename "$0"): $*" >&2; exit 1; }
finish() { # the last line, and the exit status
  say "took $(($(date +%s) - STARTED_AT)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
# wait_for TRIES COMMAND...: run COMMAND every 0.2 s until it succeeds, at most TRIES times.
wait_for() {
  local tries=$1
  shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.2; done
  return 1
}

[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$ROOT/dist/src/daemon/main.js" ] || die "no dist/: run npm ci (or npm run build) first"
! mountpoint -q "$MOUNT" 2>/dev/null || die "$MOUNT is a mountpoint already (another lxcfs-ts serves it?)"
MOUNT_MADE=
[ -e "$MOUNT" ] || MOUNT_MADE=1

# need_packages COMMAND:PACKAGE...: apt-get install the packages whose command is missing.
need_packages() {
  local need=() spec
  for spec in "$@"; do command -v "${spec%%:*}" >/dev/null || need+=("${spec#*:}"); done
  [ ${#need[@]} = 0 ] && return 0
  say "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
}

# base_tarball: a Debian bookworm minbase tree with procps (free, top), debootstrapped once and cached
# as $WORK/base-bookworm.tar; prints its path.
base_tarball() {
  local tar=$WORK/base-bookworm.tar
  if [ ! -s "$tar" ]; then
    say "debootstrap bookworm (once; cached in $tar)" >&2
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=procps bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $WORK/debootstrap.log"
    tar -C "$WORK/rootfs" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$WORK/rootfs"
  fi
  echo "$tar"
}

# --- the daemon ------------------------------------------------------------------------------------
DAEMON_PID=
DAEMON_LOG=
daemons=0
# start_daemon [OPTION...]: a new lxcfs-ts on $MOUNT, as installed (the file's own node flags), logging
# to $RUN/daemon-N.log; returns once its log says "serving" (1 if it exited or never did).
start_daemon() {
  daemons=$((daemons + 1))
  DAEMON_LOG=$RUN/daemon-$daemons.log
  : >"$DAEMON_LOG"
  "$ROOT/dist/src/daemon/main.js" -p "$PIDFILE" "$@" "$MOUNT" >"$DAEMON_LOG" 2>&1 &
  DAEMON_PID=$!
  wait_for 300 serving_or_gone
  grep -q '"msg":"serving"' "$DAEMON_LOG"
}
# shellcheck disable=SC2317 # (called through wait_for)
serving_or_gone() { grep -q '"msg":"serving"' "$DAEMON_LOG" || ! kill -0 "$DAEMON_PID" 2>/dev/null; }
# stop_daemon SIGNAL: signal the daemon and wait for it; its exit status in DAEMON_RC.
DAEMON_RC=
stop_daemon() {
  DAEMON_RC=0
  kill -s "$1" "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || DAEMON_RC=$? # (no "Killed" job notice on stderr)
  DAEMON_PID=
}
# cleanup_daemon: stop the daemon if one runs, detach the dead mounts killed daemons left on $MOUNT, and
# remove $MOUNT (with the empty placeholders a runtime made in it) if this run made it.
cleanup_daemon() {
  [ -n "$DAEMON_PID" ] && stop_daemon TERM
  while findmnt -rn -o TARGET "$MOUNT" >/dev/null 2>&1; do umount -l "$MOUNT" || break; done
  if [ -n "$MOUNT_MADE" ] && [ -d "$MOUNT" ]; then
    find "$MOUNT" -depth -mindepth 1 \( -type d -empty -o -type f -empty \) -delete
    rmdir "$MOUNT"
  fi
}
# log_msg MESSAGE: the daemon's current log lines whose msg is MESSAGE.
log_msg() { grep -F "\"msg\":\"$1\"" "$DAEMON_LOG" || true; }
# wait_reattach_pass: until the daemon's start-up re-attach pass has logged its summary.
wait_reattach_pass() { wait_for 300 grep -qF '"msg":"re-attach pass done"' "$DAEMON_LOG"; }
# The daemon's log lines that name pid $1 as the container (the daemon's own pid is in every line too).
log_for_pid() { log_msg "$1" | grep -E "\"containerPid\":$2[,}]" || true; }

# --- what a container sees -------------------------------------------------------------------------
declare -A CT_STARTED   # container -> date +%s.%N before it was created (its uptime cannot be more)
# check_view NAME WHEN: every check of what NAME reads through lxcfs-ts.
check_view() {
  local name=$1 when=$2 out
  check "$when: $name /proc/meminfo MemTotal is its limit" "MemTotal: $((LIMIT_BYTES / 1024)) kB" \
    "$(ct_sh "$name" 'grep ^MemTotal: /proc/meminfo' 2>&1 | tr -s ' ')"
  check "$when: $name free -b total is its limit" "$LIMIT_BYTES" \
    "$(ct_sh "$name" 'free -b && echo' 2>&1 | awk '/^Mem:/ { print $2 } /rror|nable|not connected/ { print }' | head -2 | tr '\n' ' ' | sed 's/ $//')"
  check "$when: $name nproc" 1 "$(ct_sh "$name" nproc 2>&1)"
  check "$when: $name processors in /proc/cpuinfo" 1 "$(ct_sh "$name" 'grep -c ^processor /proc/cpuinfo' 2>&1)"
  # Its init started after CT_STARTED: its uptime is at most the time since then (1 s for rounding).
  out=$(ct_sh "$name" 'cat /proc/uptime' 2>&1)
  local since
  since=$(awk -v t="${CT_STARTED[$name]}" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - t + 1 }')
  if [[ $out =~ ^[0-9]+\.[0-9]+\ [0-9]+\.[0-9]+$ ]] && awk -v u="${out%% *}" -v s="$since" 'BEGIN { exit !(u <= s) }'; then
    ok "$when: $name /proc/uptime $out (at most $since s, its age)"
  else
    notok "$when: $name /proc/uptime: expected at most $since s, got '$out'"
  fi
  out=$(ct_sh "$name" 'top -bn1 2>&1 | grep ^%Cpu' 2>&1)
  if [ -n "$out" ]; then ok "$when: $name top -bn1 prints its CPU line: $out"; else
    notok "$when: $name top -bn1 prints no %Cpu line: $(ct_sh "$name" 'top -bn1 2>&1 | head -4' 2>&1 | tr '\n' '|')"
  fi
  check "$when: $name cpuN directories in ls /sys/devices/system/cpu" 1 \
    "$(ct_sh "$name" 'ls /sys/devices/system/cpu >/tmp/lxcfs-ts-ls && grep -c "^cpu[0-9]" /tmp/lxcfs-ts-ls' 2>&1)"
}
# seen_by NAME: one line of what NAME reads now (for notes while no daemon serves).
seen_by() {
  ct_sh "$1" 'free -b 2>&1 | head -2 | tail -1; cat /proc/uptime 2>&1; ls /sys/devices/system/cpu 2>&1 | head -1' 2>&1 | tr -s ' ' | tr '\n' '|'
}

# --- the reader ------------------------------------------------------------------------------------
# A shell loop in the container that reads /proc/meminfo every 0.2 s and appends "ok" or "FAIL" to
# /tmp/lxcfs-ts-reader.log. `mark` makes it write "MARK LABEL" at the start of its next iteration: every
# line after that mark comes from a read that began after the mark was set (event order, no clocks).
# shellcheck disable=SC2016 # (expanded by the container's shell)
READER='while :; do if [ -e /tmp/lxcfs-ts-mark ]; then echo "MARK $(cat /tmp/lxcfs-ts-mark)"; rm -f /tmp/lxcfs-ts-mark; fi; if cat /proc/meminfo >/dev/null 2>&1; then echo ok; else echo FAIL; fi; sleep 0.2; done >>/tmp/lxcfs-ts-reader.log 2>&1'
start_reader() { ct_sh "$1" "rm -f /tmp/lxcfs-ts-reader.log /tmp/lxcfs-ts-mark; nohup sh -c '$READER' </dev/null >/dev/null 2>&1 &"; }
reader_log() { ct_sh "$1" 'cat /tmp/lxcfs-ts-reader.log'; }
# mark NAME LABEL: set the mark and wait until the reader has written it.
mark() {
  ct_sh "$1" "echo $2 >/tmp/lxcfs-ts-mark"
  wait_for 300 eval "reader_log $1 | grep -qx 'MARK $2'" || { notok "the reader in $1 stopped (no MARK $2)"; return 1; }
}
# reader_between NAME FROM TO: the reader's lines after MARK FROM (the start when FROM is empty) up to
# MARK TO (the end when TO is empty).
reader_between() {
  reader_log "$1" | awk -v from="$2" -v to="$3" '
    BEGIN { started = from == "" }
    to != "" && $0 == "MARK " to && started { exit }
    started && !/^MARK / { print }
    $0 == "MARK " from { started = 1 }'
}
# wait_reads NAME FROM N: until the reader has read N times since MARK FROM.
wait_reads() { wait_for 300 eval "[ \$(reader_between $1 $2 '' | wc -l) -ge $3 ]"; }

# --- restarts --------------------------------------------------------------------------------------
PREV_MARK=
# restart_daemon MODE NAME: stop the daemon (term: SIGTERM; kill and kill-noreattach: SIGKILL) and start
# a new one (kill-noreattach: with --no-reattach, then `lxcfs-ts reattach MOUNT`), with NAME running all
# along, its reader reading. Then NAME must read everything again, its reader must fail no more, and the
# log must name NAME's init as re-attached. A script may define while_down MODE (run while no daemon
# serves) and after_start MODE (run once the new daemon's re-attach is done).
restart_daemon() {
  local mode=$1 name=$2 pid out rc opts=() line
  pid=$(ct_pid "$name")
  say "--- restart: $mode, $name (init pid $pid) running"
  mark "$name" "stop-$mode" || return 0
  check "before $mode: failed reads of $name's reader while the daemon served" 0 \
    "$(reader_between "$name" "$PREV_MARK" "stop-$mode" | grep -c FAIL)"
  if [ "$mode" = term ]; then
    stop_daemon TERM
    check "$mode: the daemon's exit status after SIGTERM" 0 "$DAEMON_RC"
  else
    stop_daemon KILL
    check "$mode: the daemon's exit status after SIGKILL" 137 "$DAEMON_RC"
  fi
  # One read of the reader that began after the daemon was gone: it must have failed (the dead mount).
  mark "$name" "down-$mode" && wait_reads "$name" "down-$mode" 1
  check "$mode: the first read of $name's reader once no daemon ran" FAIL "$(reader_between "$name" "down-$mode" '' | head -1)"
  say "no daemon: $name reads (free -b | uptime | ls cpu): $(seen_by "$name")"
  if declare -F while_down >/dev/null; then while_down "$mode"; fi
  [ "$mode" = kill-noreattach ] && opts=(--no-reattach)
  if start_daemon "${opts[@]}"; then ok "$mode: a new daemon serves $MOUNT"; else
    notok "$mode: the new daemon does not serve: $(tail -3 "$DAEMON_LOG" | cut -c1-400 | tr '\n' '|')"
    return 0
  fi
  if [ "$mode" = kill-noreattach ]; then
    check "$mode: before lxcfs-ts reattach, $name still reads the dead mount" \
      "cat: /proc/uptime: Transport endpoint is not connected" "$(ct_sh "$name" 'cat /proc/uptime' 2>&1)"
    rc=0
    out=$("$ROOT/dist/src/daemon/main.js" reattach "$MOUNT" 2>&1) || rc=$?
    echo "$out" | sed 's/^/#   lxcfs-ts reattach: /'
    for line in $(echo "$out" | awk '$1 == "pid" { print $2 }' | sort -u); do
      [ "$line" = "$pid" ] || say "pid $line is not $name: $(tr '\0' ' ' <"/proc/$line/cmdline" 2>&1 | cut -c1-200) (parent $(awk '/^PPid/ { print $2 }' "/proc/$line/status" 2>&1): $(tr '\0' ' ' <"/proc/$(awk '/^PPid/ { print $2 }' "/proc/$line/status" 2>/dev/null)/cmdline" 2>&1 | cut -c1-200))"
    done
    check "$mode: lxcfs-ts reattach $MOUNT exit status" 0 "$rc"
    for line in /proc/meminfo /sys/devices/system/cpu; do
      if echo "$out" | grep -q "^pid $pid (mnt:\[[0-9]*\]): re-attached $line$"; then
        ok "$mode: lxcfs-ts reattach re-attached $line of $name's init pid $pid"
      else notok "$mode: lxcfs-ts reattach printed no 're-attached $line' for $name's init pid $pid"; fi
    done
  else
    wait_reattach_pass || notok "$mode: no 're-attach pass done' in $DAEMON_LOG"
    line=$(log_for_pid 'container re-attached' "$pid")
    if [ -n "$line" ]; then ok "$mode: the log has 'container re-attached' for $name's init pid $pid"; else
      notok "$mode: no 'container re-attached' line for $name's init pid $pid in $DAEMON_LOG: $(grep -i attach "$DAEMON_LOG" | cut -c1-300 | tr '\n' '|')"
    fi
    echo "$line" | cut -c1-400 | sed 's/^/#   log: /'
    for f in /proc/meminfo /sys/devices/system/cpu; do
      case $line in *"\"$f\""*) ok "$mode: the re-attached list has $f" ;; *) notok "$mode: the re-attached list lacks $f" ;; esac
    done
  fi
  if [ "$mode" = kill-noreattach ]; then
    check "$mode: re-attach passes in the log of the daemon started with --no-reattach" 0 "$(log_msg 're-attach pass done' | wc -l)"
  fi
  if declare -F after_start >/dev/null; then after_start "$mode"; fi
  mark "$name" "after-$mode" || return 0
  PREV_MARK=after-$mode
  say "$name's reader from the stop to the re-attach: $(reader_between "$name" "stop-$mode" "after-$mode" | uniq -c | tr -s ' ' | tr '\n' ' ')"
  check_view "$name" "after $mode"
  wait_reads "$name" "after-$mode" 5 || notok "$mode: $name's reader does not read on"
  check "after $mode: failed reads of $name's reader since the re-attach" 0 \
    "$(reader_between "$name" "after-$mode" '' | grep -c FAIL)"
}
# reader_final NAME: no failed read since the last restart.
reader_final() {
  mark "$1" end || return 0
  check "at the end: failed reads of $1's reader since the last restart (of $(reader_between "$1" "$PREV_MARK" end | wc -l))" 0 \
    "$(reader_between "$1" "$PREV_MARK" end | grep -c FAIL)"
}
