// lxcfs-ts: re-attach a container's bind mounts of a dead lxcfs-ts FUSE connection to the live mount.
//
// Usage: lxcfs-ts-reattach PID MOUNTPOINT < requests
//   requests: one line per bind mount, "ROOT<TAB>TARGET": ROOT the path inside the FUSE filesystem the
//   dead mount shows (mountinfo's root field, e.g. /proc/meminfo), TARGET its mount point as seen in
//   PID's mount namespace (e.g. /proc/meminfo inside the container).
// For each request, in this order:
//   1. open_tree(MOUNTPOINT/ROOT, OPEN_TREE_CLONE): a detached bind mount of the same file or directory of
//      the live mount, made in our own mount namespace, before leaving it;
//   2. setns() into PID's mount namespace (once; a mount namespace can only be entered by a
//      single-threaded process, which is why this is a program of its own and not code in the daemon);
//   3. if TARGET is a dead mount (statfs fails with ENOTCONN or ECONNABORTED): move_mount() the clone
//      beneath it (MOVE_MOUNT_BENEATH, Linux 6.5+), then detach the dead one on top, so readers never see
//      the file under both; where the kernel refuses that, detach the dead mount(s) (a daemon killed more
//      than once leaves several stacked) and
//   4. move_mount() the clone onto TARGET.
// A TARGET that is not dead (already live, or not a mount of ours) is left alone.
// Output: one line per request, "ok<TAB>TARGET", "skip<TAB>TARGET<TAB>reason" or
// "error<TAB>TARGET<TAB>step: strerror". Exit 0 when no request failed, 1 otherwise, 2 on bad usage or
// when the namespace cannot be entered. Needs Linux >= 5.2 (open_tree, move_mount) and CAP_SYS_ADMIN.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif

#ifndef MOVE_MOUNT_BENEATH
#define MOVE_MOUNT_BENEATH 0x00000200
#endif
#define MAX_REQUESTS 4096

// Raw syscalls: older C libraries have no wrappers, and the numbers are the same on every architecture
// that has them in the generic table.
static int sys_open_tree (int dfd, const char *path, unsigned int flags) {
  return (int) syscall(SYS_open_tree, dfd, path, flags);
}

static int sys_move_mount (int from_dfd, const char *from, int to_dfd, const char *to, unsigned int flags) {
  return (int) syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

struct request {
  char *root;
  char *target;
  int tree;
  int open_errno;
};

// Whether path is a mount of a FUSE connection that is gone. statfs, not stat: every statfs is a request to
// the daemon, while the kernel answers stat from the attributes it cached (for the attribute timeout) even
// after the connection died, so a daemon restarted within that timeout would see dead binds as live and
// leave them dead.
static int dead (const char *path) {
  struct statfs sf;
  return statfs(path, &sf) != 0 && (errno == ENOTCONN || errno == ECONNABORTED);
}

int main (int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: %s PID MOUNTPOINT [NAMESPACE_INODE] < \"ROOT\\tTARGET\" lines\n", argv[0]);
    return 2;
  }
  const char *pid = argv[1];
  const char *mountpoint = argv[2];

  static struct request requests[MAX_REQUESTS];
  int count = 0;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while (count < MAX_REQUESTS && (len = getline(&line, &cap, stdin)) > 0) {
    if (line[len - 1] == '\n') line[len - 1] = '\0';
    char *tab = strchr(line, '\t');
    if (tab == NULL || tab == line || tab[1] != '/' || line[0] != '/') continue;
    *tab = '\0';
    requests[count].root = strdup(line);
    requests[count].target = strdup(tab + 1);
    if (requests[count].root == NULL || requests[count].target == NULL) return 2;
    count++;
  }
  free(line);

  // 1. Clones of the live mount, made before leaving our namespace.
  for (int i = 0; i < count; i++) {
    char source[PATH_MAX];
    if (snprintf(source, sizeof(source), "%s%s", mountpoint, strcmp(requests[i].root, "/") == 0 ? "" : requests[i].root) >= (int) sizeof(source)) {
      requests[i].tree = -1;
      requests[i].open_errno = ENAMETOOLONG;
      continue;
    }
    requests[i].tree = sys_open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    requests[i].open_errno = requests[i].tree < 0 ? errno : 0;
  }

  // 2. Into the container's mount namespace.
  char nspath[64];
  snprintf(nspath, sizeof(nspath), "/proc/%s/ns/mnt", pid);
  int ns = open(nspath, O_RDONLY | O_CLOEXEC);
  if (ns < 0) {
    fprintf(stderr, "cannot enter the mount namespace of pid %s: %s\n", pid, strerror(errno));
    return 2;
  }
  // The pid may have exited and been reused since it was chosen: enter only the namespace the caller
  // scanned (its inode, as /proc/PID/ns/mnt's link names it).
  struct stat nsst;
  if (argc == 4 && (fstat(ns, &nsst) != 0 || (unsigned long long) nsst.st_ino != strtoull(argv[3], NULL, 10))) {
    fprintf(stderr, "pid %s is no longer in mount namespace %s\n", pid, argv[3]);
    return 2;
  }
  if (setns(ns, CLONE_NEWNS) != 0) {
    fprintf(stderr, "cannot enter the mount namespace of pid %s: %s\n", pid, strerror(errno));
    return 2;
  }
  close(ns);

  int failed = 0;
  for (int i = 0; i < count; i++) {
    struct request *r = &requests[i];
    if (!dead(r->target)) {
      printf("skip\t%s\tnot a dead mount\n", r->target);
      if (r->tree >= 0) close(r->tree);
      continue;
    }
    if (r->tree < 0) {
      printf("error\t%s\topen_tree: %s\n", r->target, strerror(r->open_errno));
      failed = 1;
      continue;
    }
    // 3. Linux 6.5+: the live clone goes in beneath the dead mount, then the dead one is detached, so a
    // reader sees the dead file or the live one, never what is under both (the container's own
    // /proc/meminfo: the host's figures).
    if (sys_move_mount(r->tree, "", AT_FDCWD, r->target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_BENEATH) == 0) {
      if (umount2(r->target, MNT_DETACH) != 0) {
        printf("error\t%s\tumount2 (above the new mount): %s\n", r->target, strerror(errno));
        failed = 1;
      } else {
        printf("ok\t%s\n", r->target);
      }
      close(r->tree);
      continue;
    }
    // Older kernels (EINVAL), or a target the kernel will not mount beneath: detach the dead mount(s)
    // stacked on the target, then move the clone in place (a reader may see the file underneath between).
    int detached = 0;
    int umount_errno = 0;
    while (dead(r->target) && detached < 16) {
      if (umount2(r->target, MNT_DETACH) != 0) {
        umount_errno = errno; // before dead() stats again and overwrites it
        break;
      }
      detached++;
    }
    if (dead(r->target)) {
      // EINVAL here is usually a mount locked by a user namespace nested in the container (bubblewrap,
      // rootless podman): only that namespace's owner may unmount it.
      printf("error\t%s\tumount2: %s%s\n", r->target, strerror(umount_errno ? umount_errno : ENOTCONN),
             umount_errno == EINVAL ? " (locked: the mount belongs to a nested user namespace)" : "");
      close(r->tree);
      failed = 1;
      continue;
    }
    // 4. The live clone in its place.
    if (sys_move_mount(r->tree, "", AT_FDCWD, r->target, MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      printf("error\t%s\tmove_mount: %s\n", r->target, strerror(errno));
      failed = 1;
    } else {
      printf("ok\t%s\n", r->target);
    }
    close(r->tree);
  }
  fflush(stdout);
  return failed;
}
