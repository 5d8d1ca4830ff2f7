// lxcfs-ts: sd_notify(3) without libsystemd, and flock(2), for the daemon's systemd readiness and its
// locked pid file (Node has neither unix datagram sockets nor flock). The protocol is systemd's
// sd_notify: one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket named by $NOTIFY_SOCKET ("@name"
// is Linux's abstract namespace), descriptors (FDSTORE=1) as SCM_RIGHTS.

#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd-notify.h"

int lxcfs_sd_notify(const char *socket_path, const char *state, const int *fds, size_t nfds) {
  if (socket_path == NULL || socket_path[0] == '\0') return EINVAL;
  if (socket_path[0] != '/' && socket_path[0] != '@') return EAFNOSUPPORT; // vsock: not ours
  if (nfds > SD_NOTIFY_MAX_FDS) return E2BIG;

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  size_t len = strlen(socket_path);
  if (len >= sizeof(addr.sun_path)) return ENAMETOOLONG;
  memcpy(addr.sun_path, socket_path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  // An abstract name has no terminating NUL in its length; a path's is harmless either way.
  socklen_t addrlen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + (socket_path[0] == '/' ? 1 : 0));

  int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return errno;

  struct iovec iov = { .iov_base = (void *) state, .iov_len = strlen(state) };
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * SD_NOTIFY_MAX_FDS)];
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = { .msg_name = &addr, .msg_namelen = addrlen, .msg_iov = &iov, .msg_iovlen = 1 };
  if (nfds > 0) {
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  }

  ssize_t sent;
  do {
    sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  int err = sent < 0 ? errno : 0;
  close(sock);
  return err;
}

int lxcfs_flock(int fd, int operation) {
  int res;
  do {
    res = flock(fd, operation);
  } while (res < 0 && errno == EINTR && !(operation & LOCK_NB));
  return res == 0 ? 0 : errno;
}
