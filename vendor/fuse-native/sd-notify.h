// lxcfs-ts: sd_notify(3) and flock(2) for the daemon (sd-notify.c).
#ifndef LXCFS_TS_SD_NOTIFY_H
#define LXCFS_TS_SD_NOTIFY_H

#include <stddef.h>

#define SD_NOTIFY_MAX_FDS 16

/**
 * Send `state` ("READY=1\nSTATUS=…") as one datagram to the AF_UNIX socket `socket_path` ($NOTIFY_SOCKET:
 * a path, or "@name" for the abstract namespace), with `fds` attached as SCM_RIGHTS when nfds > 0.
 * Returns 0 or an errno (EINVAL empty path, EAFNOSUPPORT not a unix socket name, E2BIG too many fds,
 * ENAMETOOLONG, or sendmsg's).
 */
int lxcfs_sd_notify(const char *socket_path, const char *state, const int *fds, size_t nfds);

/** flock(2) on `fd` with LOCK_SH/LOCK_EX/LOCK_UN (| LOCK_NB); returns 0 or an errno (EWOULDBLOCK: held). */
int lxcfs_flock(int fd, int operation);

#endif
