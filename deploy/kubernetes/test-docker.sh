#!/usr/bin/env bash
# The lxcfs-ts DaemonSet's container run the way a kubelet runs it, under Docker on this one machine,
# with no image registry: see docs/kubernetes.md ("Test it with Docker"). Not part of `npm test`.
#
#   sudo deploy/kubernetes/test-docker.sh        # after `npm ci` (it packs the built dist/)
#
# What it does:
#  1. installs docker.io and debootstrap if missing (Debian), starts dockerd unless one is running
#     (--iptables=false --bridge=none; every container here runs with --network none);
#  2. builds a Debian bookworm base with debootstrap (cached in $WORK/base-bookworm.tar), adds this
#     machine's node as /usr/local/bin/node (what node:20-bookworm-slim has), and builds the image with
#     deploy/kubernetes/Dockerfile, its runtime stage on that base and /opt/lxcfs-ts from this checkout's
#     dist/ plus production node_modules (APP_FROM; BuildKit skips the npm ci stage);
#  3. makes a fake node root, $WORK/node, a shared mount (as systemd makes / on real nodes), and starts
#     the daemon's container as the kubelet would from daemonset.yaml: hostPID, privileged (or, where
#     this machine's capability bounding set is incomplete, every capability it has plus /dev/fuse and
#     unconfined seccomp, AppArmor and /proc paths), the node's /var/lib at /host/var/lib with
#     bind-propagation=rshared, the node's /run/lxcfs-ts, and the DaemonSet's args and env;
#  4. starts consumer containers (docker run -m 256m --cpuset-cpus 0) with the pod example's binds of
#     the served files, and checks what they read;
#  5. stops the daemon's container (SIGTERM, as a pod deletion does) and starts a new one, kills one
#     (SIGKILL, as an OOM kill does) and starts it again, and runs the preStop hook: after each restart a
#     new consumer reads the new daemon's files; a consumer started before the restart reads them too
#     once `lxcfs-ts reattach` exists (before, it is reported, not failed);
#  6. removes its containers, images (KEEP_IMAGES=1 keeps them), mounts and cgroups, and stops the dockerd
#     it started.
# Prints one line per check and ends with "N passed, N failed"; exits 1 if a check failed.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${LXCFS_TS_K8S_WORK:-/var/tmp/lxcfs-ts-k8s}
KEEP_IMAGES=${KEEP_IMAGES:-0}
TAG=lxcfs-ts-k8s-test-$$
NODE=$WORK/node-$$
IMAGE=lxcfs-ts:$TAG
NODE_IMAGE=lxcfs-ts-test-node:$TAG
APP_IMAGE=lxcfs-ts-test-app:$TAG
DEBIAN_IMAGE=lxcfs-ts-test-debian:$TAG
SERVED_FILES="cpuinfo diskstats meminfo stat swaps uptime loadavg slabinfo"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
notok() { failed=$((failed + 1)); echo "not ok - $*"; }
check() { # check DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then ok "$1: $3"; else notok "$1: expected '$2', got '$3'"; fi
}
say() { echo "# $*"; }
die() { echo "test-docker.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root"
[ -f "$ROOT/dist/src/daemon/main.js" ] || die "no dist/: run npm ci (or npm run build) first"
mkdir -p "$WORK"

# --- 1. docker --------------------------------------------------------------------------------------
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi

started_dockerd=
cgroup_parent=
if ! docker info >/dev/null 2>&1; then
  # Containers and BuildKit steps go under this shell's own cgroups, not beside them.
  own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
  [ -n "$own" ] || own=$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup)
  cgroup_parent=${own%/}/$TAG
  say "starting dockerd (log: $WORK/dockerd.log, cgroup parent $cgroup_parent)"
  dockerd --iptables=false --ip-masq=false --bridge=none --cgroup-parent="$cgroup_parent" \
    --pidfile "$WORK/dockerd.pid" >"$WORK/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.3; done
  docker info >/dev/null 2>&1 || die "dockerd did not start; see $WORK/dockerd.log"
fi

cleanup() {
  set +e
  say "cleaning up"
  docker ps -aq --filter "label=$TAG" | xargs -r docker rm -f >/dev/null
  # Dead FUSE mounts a killed daemon may have left on the fake node, then the node's own bind.
  while findmnt -rn -o TARGET "$NODE/var/lib/lxcfs" >/dev/null 2>&1; do umount -l "$NODE/var/lib/lxcfs" || break; done
  mountpoint -q "$NODE" && umount -l "$NODE"
  rm -rf "$NODE" "$WORK/stage-$$" "$WORK/node-context-$$"
  if [ "$KEEP_IMAGES" != 1 ]; then
    docker rmi -f "$IMAGE" "$NODE_IMAGE" "$APP_IMAGE" "$DEBIAN_IMAGE" >/dev/null 2>&1
    # BuildKit's cache of these builds; only on a dockerd of our own (another one's cache is not ours).
    [ -n "$started_dockerd" ] && docker builder prune -af >/dev/null 2>&1
  fi
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.3; done
    # The cgroups runc and BuildKit made under ours (in hierarchies where ours is the root, the whole
    # path was made for them): deepest first, and only empty ones.
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
      [ -d "$h${cgroup_parent#/}" ] || continue
      find "$h${cgroup_parent#/}" -depth -type d -exec rmdir {} \; 2>/dev/null
      d=$(dirname "$h${cgroup_parent#/}")
      while [ "${#d}" -gt "${#h}" ] && [ -z "$(cat "$d/cgroup.procs" 2>/dev/null)" ] && rmdir "$d" 2>/dev/null; do d=$(dirname "$d"); done
    done
  fi
}
trap cleanup EXIT

# BuildKit (it skips the Dockerfile's npm ci stage): buildx where installed, else the docker.io client.
build() {
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --load --network none "$@"
  else
    DOCKER_BUILDKIT=1 /usr/bin/docker build --network none "$@"
  fi
}

# --- 2. images --------------------------------------------------------------------------------------
if [ ! -s "$WORK/base-bookworm.tar" ]; then
  say "debootstrap bookworm (once; cached in $WORK/base-bookworm.tar)"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase --include=mount,procps,mawk bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $WORK/debootstrap.log"
  tar -C "$WORK/rootfs" -cf "$WORK/base-bookworm.tar.tmp" . && mv "$WORK/base-bookworm.tar.tmp" "$WORK/base-bookworm.tar"
  rm -rf "$WORK/rootfs"
fi
docker import "$WORK/base-bookworm.tar" "$DEBIAN_IMAGE" >/dev/null

ctx=$WORK/node-context-$$
mkdir -p "$ctx"
cp "$(readlink -f "$(command -v node)")" "$ctx/node"
printf 'FROM %s\nCOPY node /usr/local/bin/node\n' "$DEBIAN_IMAGE" >"$ctx/Dockerfile"
build -q -t "$NODE_IMAGE" "$ctx" >/dev/null

# /opt/lxcfs-ts as the Dockerfile's build stage leaves it: dist/, the addon, production node_modules.
stage=$WORK/stage-$$/opt/lxcfs-ts
mkdir -p "$stage/vendor/node-cgroups-parser"
cp -a "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/dist" "$stage/"
cp -a "$ROOT/vendor/fuse-native" "$stage/vendor/"
cp -a "$ROOT/vendor/node-cgroups-parser/package.json" "$ROOT/vendor/node-cgroups-parser/dist" "$stage/vendor/node-cgroups-parser/"
(cd "$stage" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund >/dev/null)
tar -C "$WORK/stage-$$" -c opt | docker import - "$APP_IMAGE" >/dev/null

say "building $IMAGE with deploy/kubernetes/Dockerfile"
(cd "$ROOT" && build -q -f deploy/kubernetes/Dockerfile --build-arg APP_FROM="$APP_IMAGE" \
  --build-arg RUNTIME_IMAGE="$NODE_IMAGE" -t "$IMAGE" . >/dev/null)

# --- 3. the daemon's container, as daemonset.yaml has it -------------------------------------------
# args and env of the DaemonSet's container, read from the manifest itself.
spec=$(cd "$ROOT" && node --input-type=module -e '
  import { readFileSync } from "node:fs";
  import { parseAllDocuments } from "yaml";
  const ds = parseAllDocuments(readFileSync("deploy/kubernetes/daemonset.yaml", "utf8")).map((d) => d.toJS()).find((d) => d?.kind === "DaemonSet");
  const c = ds.spec.template.spec.containers.find((c) => c.name === "lxcfs-ts");
  const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.name, m]));
  const vols = Object.fromEntries(ds.spec.template.spec.volumes.map((v) => [v.name, v]));
  const out = [];
  for (const [name, m] of Object.entries(mounts)) {
    const host = vols[name].hostPath.path;
    out.push(`vol ${host} ${m.mountPath} ${m.mountPropagation ?? "None"}`);
  }
  for (const e of c.env ?? []) if (e.value !== undefined) out.push(`env ${e.name}=${e.value}`);
  out.push(`args ${(c.args ?? []).join(" ")}`);
  out.push(`hostPID ${ds.spec.template.spec.hostPID === true}`);
  out.push(`privileged ${c.securityContext?.privileged === true}`);
  out.push(`probe ${c.livenessProbe.exec.command.join(" ")}`);
  out.push(`prestop ${c.lifecycle.preStop.exec.command.join(" ")}`);
  console.log(out.join("\n"));
')
say "from daemonset.yaml:"
echo "$spec" | sed 's/^/#   /'
[ "$(echo "$spec" | awk '$1 == "hostPID" { print $2 }')" = true ] || die "daemonset.yaml: hostPID is not set"

mkdir -p "$NODE"
mount --bind "$NODE" "$NODE"
mount --make-rshared "$NODE"

run_args=(--pid host --network none --label "$TAG")
# privileged needs every capability in this process's bounding set; some sandboxes withhold one.
CAP_NAMES=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
  NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT
  SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
  AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ
  PERFMON BPF CHECKPOINT_RESTORE)
bounding=$((16#$(awk '/^CapBnd/ { print $2 }' /proc/self/status)))
missing=()
for ((i = 0; i <= $(cat /proc/sys/kernel/cap_last_cap) && i < ${#CAP_NAMES[@]}; i++)); do
  (((bounding >> i) & 1)) || missing+=("${CAP_NAMES[$i]}")
done
if [ ${#missing[@]} = 0 ]; then
  run_args+=(--privileged)
  say "daemon container: --privileged"
else
  run_args+=(--cap-add ALL)
  for c in "${missing[@]}"; do run_args+=(--cap-drop "$c"); done
  run_args+=(--device /dev/fuse --security-opt apparmor=unconfined --security-opt seccomp=unconfined --security-opt systempaths=unconfined)
  say "daemon container: this machine's capability bounding set lacks ${missing[*]}, which --privileged asks for:" \
    "all other capabilities, /dev/fuse, unconfined seccomp, AppArmor and /proc paths instead"
fi
daemon_args=()
while read -r kind a b c; do
  case $kind in
  vol)
    mkdir -p "$NODE$a"
    prop=; [ "$c" = Bidirectional ] && prop=,bind-propagation=rshared
    [ "$c" = HostToContainer ] && prop=,bind-propagation=rslave
    run_args+=(--mount "type=bind,source=$NODE$a,target=$b$prop")
    ;;
  env) run_args+=(-e "$a") ;;
  args) [ -n "$a" ] && read -r -a daemon_args <<<"$a $b $c" ;;
  esac
done <<<"$spec"
# This machine's init hides its namespaces even from root; this shell is in the same cgroup namespace
# and mount namespace as the host's init would be (docs: LXCFS_TS_HOST_PID).
run_args+=(-e "LXCFS_TS_HOST_PID=$$")

served=$NODE/var/lib/lxcfs
start_daemon() { # start_daemon NAME: a new container (the kubelet makes one per restart)
  docker run -d --name "$1" "${run_args[@]}" "$IMAGE" "${daemon_args[@]}" >/dev/null
}
wait_served() { # wait until the node's /var/lib/lxcfs/proc/meminfo reads, 60 s at most
  for _ in $(seq 300); do timeout -s KILL 4 cat "$served/proc/meminfo" >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
fuse_mounts() { findmnt -rn -o FSTYPE "$served" 2>/dev/null | grep -c '^fuse' || true; }

# --- 4. consumers -----------------------------------------------------------------------------------
consumer_mounts=()
for f in $SERVED_FILES; do consumer_mounts+=(--mount "type=bind,source=$served/proc/$f,target=/proc/$f"); done
consumer_mounts+=(--mount "type=bind,source=$served/sys/devices/system/cpu,target=/sys/devices/system/cpu")
start_consumer() { # start_consumer NAME
  docker run -d --name "$1" --label "$TAG" --network none -m 256m --cpuset-cpus 0 "${consumer_mounts[@]}" "$NODE_IMAGE" sleep infinity >/dev/null
}
memtotal() { docker exec "$1" sh -c 'head -1 /proc/meminfo' 2>&1 | tr -s ' ' | tr -d '\r'; }
check_consumer() { # check_consumer NAME WHEN
  check "$2: $1 reads its limit in /proc/meminfo" "MemTotal: 262144 kB" "$(memtotal "$1")"
  check "$2: $1 sees its one CPU in /proc/cpuinfo" "1" "$(docker exec "$1" grep -c ^processor /proc/cpuinfo 2>&1)"
  check "$2: $1 reads /sys/devices/system/cpu/online" "0" "$(docker exec "$1" cat /sys/devices/system/cpu/online 2>&1)"
}
has_reattach() { docker exec "$1" lxcfs-ts --help 2>/dev/null | grep -q 'lxcfs-ts reattach'; }
check_old_consumer() { # check_old_consumer NAME WHEN DAEMON
  if has_reattach "$3"; then
    check "$2: $1, started before the restart, reads the new daemon's file (re-attached)" "MemTotal: 262144 kB" "$(memtotal "$1")"
  else
    say "$2: $1, started before the restart, reads: $(memtotal "$1") (this lxcfs-ts has no reattach: expected until it does)"
  fi
}

say "starting the daemon's container"
start_daemon "$TAG-daemon-1"
if wait_served; then ok "the node's /var/lib/lxcfs is served by the container's FUSE mount"; else
  docker logs "$TAG-daemon-1" 2>&1 | tail -20
  die "the node's /var/lib/lxcfs/proc/meminfo was not served within 60 s"
fi
check "one FUSE mount on the node's /var/lib/lxcfs" 1 "$(fuse_mounts)"
read -r -a probe <<<"$(echo "$spec" | sed -n 's/^probe //p')"
if docker exec "$TAG-daemon-1" "${probe[@]}" >/dev/null; then ok "the liveness probe's command succeeds (${probe[*]})"; else notok "the liveness probe's command fails (${probe[*]})"; fi
say "daemon log: $(docker logs "$TAG-daemon-1" 2>&1 | grep -m1 '"serving"' | cut -c1-200)"
start_consumer "$TAG-consumer-1"
check_consumer "$TAG-consumer-1" "first daemon"
metrics=$(echo "$spec" | awk '$1 == "args" { for (i = 2; i < NF; i++) if ($i == "--metrics") print $(i + 1) }')
if [ -n "$metrics" ]; then
  # The consumer's reads show up in the daemon's metrics (on the container's loopback: --network none).
  scrape="fetch('http://127.0.0.1:${metrics##*:}/metrics').then(r => r.text()).then(t => console.log(t.split('\\n').filter(l => /^lxcfs_ts_requests_total\\{.*meminfo/.test(l)).join(' ')))"
  got=$(docker exec "$TAG-daemon-1" node -e "$scrape" 2>&1)
  case $got in *lxcfs_ts_requests_total*) ok "metrics on port ${metrics##*:} count the reads: $got" ;; *) notok "no meminfo request counter in the metrics: $got" ;; esac
fi
say "free -m in $TAG-consumer-1:"
docker exec "$TAG-consumer-1" free -m | sed 's/^/#   /'

# --- 5. restarts ------------------------------------------------------------------------------------
say "SIGTERM (pod deleted): docker stop, then a new container"
docker stop -t 20 "$TAG-daemon-1" >/dev/null
check "after a clean stop the daemon's container exited with" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$TAG-daemon-1")"
check "after a clean stop the node's /var/lib/lxcfs has FUSE mounts" 0 "$(fuse_mounts)"
say "while no daemon runs, $TAG-consumer-1 reads: $(memtotal "$TAG-consumer-1")"
start_daemon "$TAG-daemon-2"
if wait_served; then ok "a new daemon container serves the node's /var/lib/lxcfs"; else notok "the new daemon container does not serve"; fi
start_consumer "$TAG-consumer-2"
check_consumer "$TAG-consumer-2" "after SIGTERM + new container"
check_old_consumer "$TAG-consumer-1" "after SIGTERM + new container" "$TAG-daemon-2"
docker logs "$TAG-daemon-2" 2>&1 | grep -iE 're-?attach' | head -4 | cut -c1-240 | sed 's/^/# daemon-2 log: /'

say "SIGKILL (OOM kill): docker kill, then docker start of the same container"
docker kill -s KILL "$TAG-daemon-2" >/dev/null
docker wait "$TAG-daemon-2" >/dev/null
stale=$(stat -c %F "$served/proc" 2>&1 || true)
say "the killed daemon left on the node: $(findmnt -rn -o FSTYPE "$served" | tr '\n' ' ')(stat: ${stale##*: })"
docker start "$TAG-daemon-2" >/dev/null
if wait_served; then ok "the restarted container serves again over the dead mount"; else
  notok "the restarted container does not serve"
  docker logs "$TAG-daemon-2" 2>&1 | tail -20
fi
check "after SIGKILL + start: FUSE mounts on the node's /var/lib/lxcfs (dead one detached)" 1 "$(fuse_mounts)"
start_consumer "$TAG-consumer-3"
check_consumer "$TAG-consumer-3" "after SIGKILL + start"
for c in "$TAG-consumer-1" "$TAG-consumer-2"; do check_old_consumer "$c" "after SIGKILL + start" "$TAG-daemon-2"; done

say "pod deletion with the preStop hook: the hook (lxcfs-ts-pod stop), then SIGTERM"
read -r -a prestop <<<"$(echo "$spec" | sed -n 's/^prestop //p')"
if timeout 60 docker exec "$TAG-daemon-2" "${prestop[@]}"; then ok "the preStop command returns 0 (${prestop[*]})"; else notok "the preStop command failed or hung (${prestop[*]})"; fi
check "after preStop the node's /var/lib/lxcfs has FUSE mounts" 0 "$(fuse_mounts)"
check "after preStop the daemon's container is still running (until SIGTERM)" true "$(docker inspect -f '{{.State.Running}}' "$TAG-daemon-2")"
docker stop -t 20 "$TAG-daemon-2" >/dev/null
check "after preStop and SIGTERM the container exited with" 0 "$(docker inspect -f '{{.State.ExitCode}}' "$TAG-daemon-2")"
say "last daemon container's log (tail):"
docker logs "$TAG-daemon-2" 2>&1 | tail -4 | cut -c1-200 | sed 's/^/#   /'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
