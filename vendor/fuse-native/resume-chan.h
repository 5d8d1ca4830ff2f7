// lxcfs-ts: a FUSE channel that can outlive its daemon (PATCHES.md 19, lxcfs-ts issue 11).
//
// A daemon restart normally ends the kernel's FUSE connection with it. When another process (systemd's
// file descriptor store) keeps the /dev/fuse descriptor open, the connection survives and requests wait in
// the kernel; a new daemon can serve the same connection if libfuse can be made to accept it. libfuse 2.9
// cannot by itself: the kernel sends INIT once per connection (and libfuse answers EIO to everything until
// it saw one), and its high-level API keeps a table of node ids and file handles (pointers into the dead
// process) that the kernel's cached inodes and open files still carry.
//
// This channel sits between the kernel and libfuse (libfuse's public fuse_chan_new() takes its receive,
// send and destroy hooks; fuse-native.c installs them) and translates:
// - node ids: the kernel only ever sees ids this channel gives out, one per path, never reused for another
//   path. They are recorded in a state memfd (a small shared-memory table kept beside the descriptor), so
//   a later daemon maps a kernel id back to its path and asks its own libfuse session for it with LOOKUPs
//   it makes up (as root, from the daemon's own pid), on first use. FORGETs are dropped: libfuse keeps
//   every node it was asked for (the tree of a read-only filesystem is small and bounded).
// - file and directory handles: the kernel gets handles made here, (generation << 40) | counter, mapped to
//   libfuse's. A handle from an earlier daemon (another generation) is opened again in this session on its
//   first use, with an OPEN or OPENDIR made up from the request's caller (uid, gid, pid): for lxcfs-ts that
//   renders the file again for that reader, as a read from offset 0 of a /proc seq_file does; its RELEASE,
//   FLUSH or FSYNC is answered here when it was never used.
// - INIT: the kernel's INIT request is recorded in the state at the first start. A resuming channel asks
//   the kernel (FUSE_NOTIFY_RESEND, Linux 6.9+) to queue again every request that the dead daemon had read
//   but not answered, then plays the recorded INIT to its new session (the reply is dropped: the kernel
//   negotiated long ago), before it reads anything.
//
// It knows nothing of libfuse's types: the session it feeds is three callbacks (resume_session_t), so
// test/resume-chan-test.c drives it with a fake kernel (a SOCK_SEQPACKET socket pair) and a fake session.
//
// Assumptions, checked where they can be: the filesystem is not changed through FUSE (lxcfs-ts is
// read-only; a successful rename or unlink would leave a stale path behind an id); libfuse answers each
// request on the thread that processes it (the high-level API does); protocol 7.19 request layouts (what
// libfuse 2.9 negotiates).
//
// Thread safety: receive and send may run on any number of threads at once (fuse_loop_mt's workers). One
// mutex guards the tables; made-up requests (INIT, LOOKUPs, reopens) run one at a time under a second one.

#ifndef LXCFS_TS_RESUME_CHAN_H
#define LXCFS_TS_RESUME_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define RESUME_STATE_VERSION 1
#define RESUME_NODE_CAPACITY (1u << 18)             // paths with an id; a 512-CPU host's cpu tree is ~80k
#define RESUME_NAMES_CAPACITY (16u * 1024 * 1024)   // bytes of their names
#define RESUME_INIT_MAX 256                          // bytes of the kernel's INIT request kept
#define RESUME_FH_GENERATION_SHIFT 40

typedef struct resume_chan resume_chan_t;

// The session the channel feeds. process() runs one request (a complete FUSE request) synchronously; its
// reply comes back through resume_chan_send() before it returns, as libfuse's fuse_session_process_buf()
// does. exited()/exit() mirror fuse_session_exited()/fuse_session_exit().
typedef struct {
  void *ctx;
  void (*process)(void *ctx, const char *req, size_t len);
  int (*exited)(void *ctx);
  void (*exit)(void *ctx);
} resume_session_t;

typedef struct {
  uint32_t version;
  uint64_t generation;      // 1 at the first start, +1 at each resume
  uint32_t nodes;           // paths with an id
  uint32_t init_len;        // bytes of the recorded INIT request (0: none yet)
  char mountpoint[1024];
  char device[64];          // the mount's "major:minor" as mountinfo shows it (resume_chan_set_device)
} resume_state_info_t;

typedef struct {
  int resumed;              // this channel took over a stored connection
  uint64_t generation;
  uint32_t nodes;
  uint32_t handles;         // handles the kernel holds that map to this session
  uint64_t lookups_injected;
  uint64_t reopened;        // handles of an earlier daemon opened again on their first use
  uint64_t stale_answered;  // their RELEASE/FLUSH/FSYNC answered here without reopening
  uint64_t forgets_dropped;
  int resend;               // 0: the kernel accepted FUSE_NOTIFY_RESEND (Linux 6.9+), else its errno (-1: not sent yet)
  uint32_t in_flight;       // requests handed to the session and not answered yet
  int parked;
} resume_chan_stats_t;

// A channel over fuse_fd (not owned: libfuse closes it). state_fd < 0: a new connection; a state memfd
// is created for it (owned). state_fd >= 0: the state of a stored connection, which is resumed (the fd is
// owned from now on, even on failure). mountpoint is recorded in a new state. Returns 0 or -errno
// (-EPROTO: not a usable state).
int resume_chan_new (int fuse_fd, int state_fd, const char *mountpoint, resume_chan_t **out);
void resume_chan_set_session (resume_chan_t *rc, const resume_session_t *session);
// Before the first request is read (once; the first receive does it otherwise): asks the kernel to resend
// what a previous daemon had read and not answered (on a new connection nothing: this only learns whether
// the kernel can, Linux 6.9+, in stats.resend), and on a resumed channel plays the recorded INIT to the
// session. 0, or -errno when the session refused INIT.
int resume_chan_start (resume_chan_t *rc);
// Closes the state fd and frees everything. No thread may be inside receive or send (parked ones
// included: park is for a process about to exit).
void resume_chan_free (resume_chan_t *rc);

// fuse_chan_ops.receive: the next request for the session (its length), 0 when the session ended (the
// connection is gone), or -errno (-EINTR: call again), as libfuse's own channel does.
int resume_chan_receive (resume_chan_t *rc, char *buf, size_t size);
// fuse_chan_ops.send: a reply or notification from the session. 0 or -errno of the write.
int resume_chan_send (resume_chan_t *rc, const struct iovec *iov, size_t count);

int resume_chan_fuse_fd (const resume_chan_t *rc);
int resume_chan_state_fd (const resume_chan_t *rc);
// Records the mount's device ("major:minor") in the state, for the next daemon's check.
int resume_chan_set_device (resume_chan_t *rc, const char *device);
// Hand-over: no thread reads another request from the kernel (each that comes back to receive blocks for
// good); requests already read are finished. Irreversible: the process is expected to exit.
void resume_chan_park (resume_chan_t *rc);
void resume_chan_stats (resume_chan_t *rc, resume_chan_stats_t *out);

// What a state fd holds, after the same checks resume_chan_new makes. 0 or -errno (-EPROTO: not a
// state of this version, or inconsistent).
int resume_state_inspect (int state_fd, resume_state_info_t *out);

#endif
