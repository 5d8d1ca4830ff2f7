// Unit test of resume-chan.c (PATCHES.md 19), a plain C program: prints "ok N - what" / "not ok N - what"
// lines, then "1..N", and exits 1 when a check failed.
//
// The kernel is faked by one end of a SOCK_SEQPACKET socket pair (one message per read and per write, as
// /dev/fuse), the daemon's libfuse by a small session that behaves as libfuse's high-level API does where
// it matters: it answers EIO until it has seen INIT, it makes up its own node ids and file handles (a new
// session makes different ones), and it counts every node id or handle it is handed that it never gave out
// (libfuse aborts on the first: "fuse internal error: node N not found"; a stale handle is a dangling
// pointer). A daemon restart is: the channel and its session are freed with requests and handles still
// open in the kernel, and a new channel and session take over the same socket and a copy of the state fd,
// as systemd's descriptor store hands them to the next daemon.
//
// With --hammer, worker threads serve and kernel threads call at once: lookups, opens, reads and releases,
// then a restart under open handles and concurrent reads of each old handle from several callers, each of
// which must be opened again exactly once.
//
// Build: cc -I.. resume-chan-test.c ../resume-chan.c -lpthread (test/c-tests.mjs does it).

#define _GNU_SOURCE

#include "../resume-chan.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUSE_NOTIFY_RESEND
#define FUSE_NOTIFY_RESEND 7
#endif
#define UNIQUE_RESEND (1ULL << 63)

static int checks = 0;
static int failures = 0;

static void check (int ok, const char *what) {
  checks++;
  if (!ok) failures++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
  fflush(stdout);
}

static void die (const char *what) {
  perror(what);
  exit(2);
}

// ---- the fake session ----

#define MAX_NODES 64
#define MAX_HANDLES 4096

static const char *TREE[] = {
  "/proc", "/proc/meminfo", "/proc/stat", "/sys", "/sys/devices", "/sys/devices/system",
  "/sys/devices/system/cpu", "/sys/devices/system/cpu/online", "/sys/devices/system/cpu/cpu0",
  "/sys/devices/system/cpu/cpu0/online", NULL,
};

static int tree_has (const char *path) {
  for (int i = 0; TREE[i] != NULL; i++) if (strcmp(TREE[i], path) == 0) return 1;
  return 0;
}

static int tree_is_dir (const char *path) {
  size_t n = strlen(path);
  for (int i = 0; TREE[i] != NULL; i++) if (strncmp(TREE[i], path, n) == 0 && TREE[i][n] == '/') return 1;
  return 0;
}

typedef struct {
  uint64_t id;
  char path[320];
} fake_node_t;

typedef struct {
  uint64_t fh;
  char path[320];
  uint32_t pid;
  int open;
  int dir;
} fake_handle_t;

typedef struct {
  resume_chan_t *rc;
  int id;
  pthread_mutex_t lock;
  int got_init;
  int exited;
  char init[RESUME_INIT_MAX];
  size_t init_len;
  fake_node_t nodes[MAX_NODES];
  int n_nodes;
  fake_handle_t handles[MAX_HANDLES];
  int n_handles;
  // what it saw
  int unknown_node;
  int unknown_fh;
  int forgets;
  int inits;
  int lookups;
  int opens;
  int opendirs;
  int releases;
  int getattr_fh;
  int before_init;
} fake_session_t;

static __thread int worker_quit;

static const char *node_path (fake_session_t *s, uint64_t id) {
  if (id == 1) return "";
  for (int i = 0; i < s->n_nodes; i++) if (s->nodes[i].id == id) return s->nodes[i].path;
  return NULL;
}

static uint64_t node_of (fake_session_t *s, const char *path) {
  for (int i = 0; i < s->n_nodes; i++) if (strcmp(s->nodes[i].path, path) == 0) return s->nodes[i].id;
  if (s->n_nodes == MAX_NODES) return 0;
  fake_node_t *n = &s->nodes[s->n_nodes];
  // Ids that differ per session, as a new libfuse's would: (session << 20) + 7 * (index + 1).
  n->id = ((uint64_t) s->id << 20) + 7 * (uint64_t) (s->n_nodes + 1);
  snprintf(n->path, sizeof(n->path), "%s", path);
  s->n_nodes++;
  return n->id;
}

static fake_handle_t *handle_of (fake_session_t *s, uint64_t fh) {
  for (int i = 0; i < s->n_handles; i++) if (s->handles[i].fh == fh && s->handles[i].open) return &s->handles[i];
  return NULL;
}

static int open_handles (fake_session_t *s) {
  pthread_mutex_lock(&s->lock);
  int n = 0;
  for (int i = 0; i < s->n_handles; i++) n += s->handles[i].open;
  pthread_mutex_unlock(&s->lock);
  return n;
}

static void reply (fake_session_t *s, uint64_t unique, int error, const void *payload, size_t len) {
  struct fuse_out_header out = { .len = (uint32_t) (sizeof(out) + len), .error = error, .unique = unique };
  struct iovec iov[2] = { { &out, sizeof(out) }, { (void *) payload, len } };
  resume_chan_send(s->rc, iov, len > 0 ? 2 : 1);
}

static void fill_attr (struct fuse_attr *a, uint64_t id, const char *path) {
  memset(a, 0, sizeof(*a));
  a->ino = id; // as libfuse's high-level API does without use_ino
  a->mode = id == 1 || tree_is_dir(path) ? 040555 : 0100444;
  a->nlink = 1;
}

static void fake_process (void *ctx, const char *req, size_t len) {
  fake_session_t *s = ctx;
  const struct fuse_in_header *in = (const struct fuse_in_header *) req;
  const char *body = req + sizeof(*in);
  pthread_mutex_lock(&s->lock);
  if (!s->got_init && in->opcode != FUSE_INIT) {
    s->before_init++;
    pthread_mutex_unlock(&s->lock);
    reply(s, in->unique, -EIO, NULL, 0);
    return;
  }
  if (in->opcode == FUSE_FORGET || in->opcode == FUSE_BATCH_FORGET) {
    s->forgets++;
    pthread_mutex_unlock(&s->lock);
    return;
  }
  const char *path = NULL;
  if (in->opcode != FUSE_INIT && in->nodeid != 0) {
    path = node_path(s, in->nodeid);
    if (path == NULL) {
      s->unknown_node++;
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, -EIO, NULL, 0);
      return;
    }
  }
  char buf[512];
  switch (in->opcode) {
    case FUSE_INIT: {
      s->got_init = 1;
      s->inits++;
      s->init_len = len < sizeof(s->init) ? len : sizeof(s->init);
      memcpy(s->init, req, s->init_len);
      pthread_mutex_unlock(&s->lock);
      struct fuse_init_out o;
      memset(&o, 0, sizeof(o));
      o.major = 7;
      o.minor = 19;
      reply(s, in->unique, 0, &o, sizeof(o));
      return;
    }
    case FUSE_LOOKUP: {
      s->lookups++;
      char child[300];
      snprintf(child, sizeof(child), "%s/%s", path, body);
      if (!tree_has(child)) break;
      struct fuse_entry_out e;
      memset(&e, 0, sizeof(e));
      e.nodeid = node_of(s, child);
      fill_attr(&e.attr, e.nodeid, child);
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, 0, &e, sizeof(e));
      return;
    }
    case FUSE_GETATTR: {
      const struct fuse_getattr_in *g = (const struct fuse_getattr_in *) body;
      if (g->getattr_flags & FUSE_GETATTR_FH) {
        s->getattr_fh++;
        if (handle_of(s, g->fh) == NULL) s->unknown_fh++;
      }
      struct fuse_attr_out a;
      memset(&a, 0, sizeof(a));
      fill_attr(&a.attr, in->nodeid, path);
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, 0, &a, sizeof(a));
      return;
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
      if (in->opcode == FUSE_OPEN) s->opens++;
      else s->opendirs++;
      if (s->n_handles == MAX_HANDLES) break;
      fake_handle_t *h = &s->handles[s->n_handles];
      // Pointer-like handles that differ per session.
      h->fh = 0x7f0000000000ULL + ((uint64_t) s->id << 32) + 0x40 * (uint64_t) (s->n_handles + 1);
      snprintf(h->path, sizeof(h->path), "%s", path);
      h->pid = in->pid;
      h->open = 1;
      h->dir = in->opcode == FUSE_OPENDIR;
      s->n_handles++;
      struct fuse_open_out o;
      memset(&o, 0, sizeof(o));
      o.fh = h->fh;
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, 0, &o, sizeof(o));
      return;
    }
    case FUSE_READ:
    case FUSE_READDIR: {
      const struct fuse_read_in *r = (const struct fuse_read_in *) body;
      fake_handle_t *h = handle_of(s, r->fh);
      if (h == NULL || h->dir != (in->opcode == FUSE_READDIR)) {
        s->unknown_fh++;
        pthread_mutex_unlock(&s->lock);
        reply(s, in->unique, -EBADF, NULL, 0);
        return;
      }
      int n = snprintf(buf, sizeof(buf), "%s s%d:%s:%u", h->dir ? "dir" : "file", s->id, h->path, h->pid);
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, 0, buf, (size_t) n);
      return;
    }
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR: {
      const struct fuse_release_in *r = (const struct fuse_release_in *) body;
      fake_handle_t *h = handle_of(s, r->fh);
      s->releases++;
      if (h == NULL) s->unknown_fh++;
      else h->open = 0;
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, 0, NULL, 0);
      return;
    }
    case FUSE_FLUSH: {
      const struct fuse_flush_in *f = (const struct fuse_flush_in *) body;
      if (handle_of(s, f->fh) == NULL) s->unknown_fh++;
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, -ENOSYS, NULL, 0);
      return;
    }
    case FUSE_STATFS:
      if (in->uid == 4242) worker_quit = 1; // the hammer's way to end a worker
      pthread_mutex_unlock(&s->lock);
      reply(s, in->unique, -ENOSYS, NULL, 0);
      return;
  }
  pthread_mutex_unlock(&s->lock);
  reply(s, in->unique, in->opcode == FUSE_LOOKUP ? -ENOENT : -ENOSYS, NULL, 0);
}

static int fake_exited (void *ctx) {
  fake_session_t *s = ctx;
  return __atomic_load_n(&s->exited, __ATOMIC_ACQUIRE);
}

static void fake_exit (void *ctx) {
  fake_session_t *s = ctx;
  __atomic_store_n(&s->exited, 1, __ATOMIC_RELEASE);
}

static fake_session_t *session_new (int id, resume_chan_t *rc) {
  fake_session_t *s = calloc(1, sizeof(*s));
  if (s == NULL) die("calloc");
  s->id = id;
  s->rc = rc;
  pthread_mutex_init(&s->lock, NULL);
  resume_session_t ops = { .ctx = s, .process = fake_process, .exited = fake_exited, .exit = fake_exit };
  resume_chan_set_session(rc, &ops);
  return s;
}

static void session_free (fake_session_t *s) {
  pthread_mutex_destroy(&s->lock);
  free(s);
}

// ---- the fake kernel, one request at a time ----

static int resends = 0; // FUSE_NOTIFY_RESEND notifications the daemon sent
static int kfd = -1; // the kernel's end
static int dfd = -1; // the daemon's end (the "/dev/fuse" descriptor)
static uint64_t next_unique = 0;

static uint64_t ksend_full (uint32_t opcode, uint64_t nodeid, uint32_t pid, const void *body, size_t blen, uint64_t unique) {
  char msg[4096];
  struct fuse_in_header *in = (struct fuse_in_header *) msg;
  memset(in, 0, sizeof(*in));
  in->len = (uint32_t) (sizeof(*in) + blen);
  in->opcode = opcode;
  in->unique = unique;
  in->nodeid = nodeid;
  in->uid = 1000;
  in->gid = 1000;
  in->pid = pid;
  if (blen > 0) memcpy(msg + sizeof(*in), body, blen);
  if (write(kfd, msg, in->len) != (ssize_t) in->len) die("kernel write");
  return unique;
}

static uint64_t ksend (uint32_t opcode, uint64_t nodeid, uint32_t pid, const void *body, size_t blen) {
  next_unique += 2;
  return ksend_full(opcode, nodeid, pid, body, blen, next_unique);
}

typedef struct {
  struct fuse_out_header out;
  char payload[4096];
  size_t len; // payload bytes
} kreply_t;

// The next reply or notification the daemon wrote; resend notifications are counted and skipped.
static void krecv (kreply_t *r) {
  char msg[sizeof(r->out) + sizeof(r->payload)];
  for (;;) {
    ssize_t n = read(kfd, msg, sizeof(msg));
    if (n < (ssize_t) sizeof(r->out)) die("kernel read");
    memcpy(&r->out, msg, sizeof(r->out));
    r->len = (size_t) n - sizeof(r->out);
    memcpy(r->payload, msg + sizeof(r->out), r->len);
    if (r->out.unique == 0 && r->out.error == FUSE_NOTIFY_RESEND && n == sizeof(r->out)) {
      resends++;
      continue;
    }
    return;
  }
}

static int kpending (void) {
  struct pollfd p = { .fd = kfd, .events = POLLIN };
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

// Reads what the daemon wrote so far without waiting: resend notifications are counted in `resends`;
// returns how many other messages there were.
static int kdrain (void) {
  int others = 0;
  char msg[8192];
  while (kpending()) {
    ssize_t n = read(kfd, msg, sizeof(msg));
    const struct fuse_out_header *out = (const struct fuse_out_header *) msg;
    if (n == (ssize_t) sizeof(*out) && out->unique == 0 && out->error == FUSE_NOTIFY_RESEND) resends++;
    else others++;
  }
  return others;
}

static int daemon_pending (void) {
  struct pollfd p = { .fd = dfd, .events = POLLIN };
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static char rbuf[0x21000];

// One turn of a libfuse worker: receive, then process what came.
static int serve_one (resume_chan_t *rc, fake_session_t *s) {
  int n = resume_chan_receive(rc, rbuf, sizeof(rbuf));
  if (n > 0) fake_process(s, rbuf, (size_t) n);
  return n;
}

// A request, served, and its reply.
static void call (resume_chan_t *rc, fake_session_t *s, uint32_t opcode, uint64_t nodeid, uint32_t pid, const void *body, size_t blen, kreply_t *r) {
  uint64_t u = ksend(opcode, nodeid, pid, body, blen);
  serve_one(rc, s);
  krecv(r);
  if (r->out.unique != u) printf("# reply for %llu, wanted %llu\n", (unsigned long long) r->out.unique, (unsigned long long) u);
}

// A request the channel answers itself: a request the session serves follows it, so that receive
// returns; r gets the first reply.
static void call_answered_here (resume_chan_t *rc, fake_session_t *s, uint32_t opcode, uint64_t nodeid, const void *body, size_t blen, kreply_t *r) {
  uint64_t u = ksend(opcode, nodeid, 1, body, blen);
  struct fuse_getattr_in ga;
  memset(&ga, 0, sizeof(ga));
  uint64_t after = ksend(FUSE_GETATTR, 1, 1, &ga, sizeof(ga));
  serve_one(rc, s);
  krecv(r);
  kreply_t second;
  krecv(&second);
  if (r->out.unique != u || second.out.unique != after) printf("# replies for %llu and %llu\n", (unsigned long long) r->out.unique, (unsigned long long) second.out.unique);
}

static uint64_t lookup (resume_chan_t *rc, fake_session_t *s, uint64_t parent, const char *name, kreply_t *r) {
  call(rc, s, FUSE_LOOKUP, parent, 1, name, strlen(name) + 1, r);
  if (r->out.error != 0 || r->len < sizeof(struct fuse_entry_out)) return 0;
  return ((struct fuse_entry_out *) r->payload)->nodeid;
}

static uint64_t do_open (resume_chan_t *rc, fake_session_t *s, uint32_t opcode, uint64_t node, uint32_t pid) {
  struct fuse_open_in o = { .flags = O_RDONLY };
  kreply_t r;
  call(rc, s, opcode, node, pid, &o, sizeof(o), &r);
  if (r.out.error != 0 || r.len < sizeof(struct fuse_open_out)) return 0;
  return ((struct fuse_open_out *) r.payload)->fh;
}

static struct fuse_read_in read_in (uint64_t fh) {
  struct fuse_read_in rd;
  memset(&rd, 0, sizeof(rd));
  rd.fh = fh;
  rd.size = 4096;
  return rd;
}

// The payload of a read as a string.
static const char *text_of (kreply_t *r) {
  if (r->len >= sizeof(r->payload)) r->len = sizeof(r->payload) - 1;
  r->payload[r->len] = '\0';
  return r->payload;
}

static void make_pair (void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  kfd = sv[0];
  dfd = sv[1];
}

static struct fuse_init_in kernel_init (void) {
  struct fuse_init_in i;
  memset(&i, 0, sizeof(i));
  i.major = 7;
  i.minor = 45;
  i.max_readahead = 131072;
  i.flags = 0x1234567;
  return i;
}

// ---- the restart, one request at a time ----

static void test_restart (void) {
  make_pair();
  resume_chan_t *rc = NULL;
  check(resume_chan_new(dfd, -1, "/mnt/lxcfs", &rc) == 0 && rc != NULL, "a channel over a new connection");
  fake_session_t *s1 = session_new(1, rc);
  kreply_t r;

  struct fuse_init_in init = kernel_init();
  call(rc, s1, FUSE_INIT, 0, 0, &init, sizeof(init), &r);
  check(r.out.error == 0 && r.len >= 8 && ((struct fuse_init_out *) r.payload)->minor == 19, "the kernel's INIT goes to the session and its answer to the kernel");
  resume_chan_stats_t st;
  resume_chan_stats(rc, &st);
  check(resends == 1 && st.resend == 0, "before reading, a new channel asks the kernel whether it can resend (nothing to resend yet)");

  uint64_t proc = lookup(rc, s1, 1, "proc", &r);
  check(proc == 2 && ((struct fuse_entry_out *) r.payload)->attr.ino == 2, "the first path gets kernel id 2, also as its inode number (not the session's id)");
  uint64_t meminfo = lookup(rc, s1, proc, "meminfo", &r);
  check(meminfo == 3, "a path below it gets id 3");
  check(lookup(rc, s1, 1, "proc", &r) == 2, "the same path again: the same id");
  lookup(rc, s1, proc, "nothere", &r);
  check(r.out.error == -ENOENT, "a missing name: ENOENT from the session, no id");
  uint64_t stat = lookup(rc, s1, proc, "stat", &r);
  check(stat == 4, "the next new path gets the next id (a miss used none)");
  uint64_t sys = lookup(rc, s1, 1, "sys", &r);
  check(sys == 5, "/sys: id 5");

  struct fuse_getattr_in ga;
  memset(&ga, 0, sizeof(ga));
  call(rc, s1, FUSE_GETATTR, meminfo, 1, &ga, sizeof(ga), &r);
  check(r.out.error == 0 && ((struct fuse_attr_out *) r.payload)->attr.ino == meminfo, "GETATTR: the session's node, the kernel's id as inode number");

  uint64_t fh1 = do_open(rc, s1, FUSE_OPEN, meminfo, 101);
  check(fh1 == ((1ULL << RESUME_FH_GENERATION_SHIFT) | 1), "OPEN: the kernel gets handle (generation 1 << 40) | 1, not the session's");
  call(rc, s1, FUSE_READ, meminfo, 101, (struct fuse_read_in[]){ read_in(fh1) }, sizeof(struct fuse_read_in), &r);
  check(r.out.error == 0 && strcmp(text_of(&r), "file s1:/proc/meminfo:101") == 0, "READ reaches the session's handle");
  uint64_t fh2 = do_open(rc, s1, FUSE_OPEN, meminfo, 102);
  uint64_t fh3 = do_open(rc, s1, FUSE_OPEN, stat, 103);
  uint64_t dh1 = do_open(rc, s1, FUSE_OPENDIR, proc, 104);
  uint64_t dh2 = do_open(rc, s1, FUSE_OPENDIR, proc, 105);
  check(fh2 != fh1 && fh3 != fh2 && dh1 != fh3 && dh2 != dh1, "every open gets its own handle");

  struct fuse_forget_in fg = { .nlookup = 1 };
  ksend(FUSE_FORGET, meminfo, 0, &fg, sizeof(fg));
  call(rc, s1, FUSE_GETATTR, 1, 1, &ga, sizeof(ga), &r);
  check(s1->forgets == 0 && r.out.error == 0, "FORGET is dropped: the session keeps its nodes");

  check(resume_chan_set_device(rc, "0:99") == 0, "the device is recorded");
  resume_chan_stats(rc, &st);
  check(st.nodes == 4 && st.handles == 5 && st.forgets_dropped == 1 && st.in_flight == 0 && st.generation == 1 && !st.resumed, "stats: 4 paths, 5 handles, 1 forget dropped, nothing in flight");
  resume_state_info_t info;
  check(resume_state_inspect(resume_chan_state_fd(rc), &info) == 0 && info.nodes == 4 && info.generation == 1 && strcmp(info.mountpoint, "/mnt/lxcfs") == 0 && strcmp(info.device, "0:99") == 0 && info.init_len == sizeof(struct fuse_in_header) + sizeof(init), "the state: its paths, generation, mountpoint, device and the INIT request");

  // The daemon reads one more request and dies before answering it.
  uint64_t lost = ksend(FUSE_READ, meminfo, 102, (struct fuse_read_in[]){ read_in(fh2) }, sizeof(struct fuse_read_in));
  check(resume_chan_receive(rc, rbuf, sizeof(rbuf)) > 0, "a request read by the daemon that dies");
  resume_chan_stats(rc, &st);
  check(st.in_flight == 1, "it is in flight");
  int state_copy = dup(resume_chan_state_fd(rc)); // what the descriptor store keeps
  resume_chan_free(rc);
  session_free(s1);

  // ---- the next daemon ----
  rc = NULL;
  check(resume_chan_new(dfd, state_copy, NULL, &rc) == 0, "a channel resumes the connection from the stored state");
  fake_session_t *s2 = session_new(2, rc);
  // Starting asks the kernel to resend and plays INIT to the session, before anything is read.
  uint64_t u = ksend(FUSE_GETATTR, 1, 1, &ga, sizeof(ga));
  int resends_before = resends;
  check(resume_chan_start(rc) == 0, "the channel starts");
  check(s2->inits == 1 && s2->init_len == sizeof(struct fuse_in_header) + sizeof(init) && memcmp(s2->init + sizeof(struct fuse_in_header), &init, sizeof(init)) == 0, "the new session got the kernel's INIT as recorded");
  check(daemon_pending(), "(nothing read yet)");
  check(kdrain() == 0 && resends == resends_before + 1, "the kernel is asked to resend what the dead daemon read, and gets no INIT reply");
  serve_one(rc, s2);
  check(s2->before_init == 0 && s2->inits == 1, "no request reached the session before INIT, nor a second INIT");
  krecv(&r);
  check(r.out.unique == u && r.out.error == 0, "then requests are served");

  // The kernel resends the request that was lost (FUSE_UNIQUE_RESEND set).
  ksend_full(FUSE_READ, meminfo, 102, (struct fuse_read_in[]){ read_in(fh2) }, sizeof(struct fuse_read_in), lost | UNIQUE_RESEND);
  serve_one(rc, s2);
  krecv(&r);
  check(r.out.unique == (lost | UNIQUE_RESEND) && r.out.error == 0 && strcmp(text_of(&r), "file s2:/proc/meminfo:102") == 0, "the lost read is served by the new session, rendered for its caller");
  check(s2->lookups == 2 && s2->opens == 1, "through two made-up LOOKUPs (/proc, /proc/meminfo) and one OPEN");
  check(s2->unknown_node == 0 && s2->unknown_fh == 0, "the new session never saw an id or handle of the old one");

  call(rc, s2, FUSE_READ, meminfo, 101, (struct fuse_read_in[]){ read_in(fh1) }, sizeof(struct fuse_read_in), &r);
  check(r.out.error == 0 && strcmp(text_of(&r), "file s2:/proc/meminfo:101") == 0 && s2->lookups == 2 && s2->opens == 2, "another old handle of a known path: reopened, no lookup");
  call(rc, s2, FUSE_READ, meminfo, 101, (struct fuse_read_in[]){ read_in(fh1) }, sizeof(struct fuse_read_in), &r);
  check(r.out.error == 0 && s2->opens == 2, "reopened once: the next read uses the same handle");

  struct fuse_read_in rd = read_in(dh1);
  call(rc, s2, FUSE_READDIR, proc, 106, &rd, sizeof(rd), &r);
  check(r.out.error == 0 && strcmp(text_of(&r), "dir s2:/proc:106") == 0 && s2->opendirs == 1, "an old directory handle: OPENDIR again, then READDIR");

  struct fuse_release_in rel;
  memset(&rel, 0, sizeof(rel));
  rel.fh = dh2;
  ksend(FUSE_RELEASEDIR, proc, 0, &rel, sizeof(rel));
  u = ksend(FUSE_GETATTR, 1, 1, &ga, sizeof(ga));
  serve_one(rc, s2);
  krecv(&r);
  check(r.out.error == 0 && r.out.unique != u && s2->releases == 0, "an old handle never used: its RELEASEDIR is answered 0 here, the session never sees it");
  krecv(&r);
  check(r.out.unique == u, "(and the request after it is served)");

  rel.fh = fh1;
  call(rc, s2, FUSE_RELEASE, meminfo, 0, &rel, sizeof(rel), &r);
  check(r.out.error == 0 && s2->releases == 1 && s2->unknown_fh == 0, "a reopened handle's RELEASE reaches the session with its own handle");
  check(open_handles(s2) == 2, "the session holds the handles reopened and not released yet (fh2, dh1)");

  struct fuse_getattr_in gfh;
  memset(&gfh, 0, sizeof(gfh));
  gfh.getattr_flags = FUSE_GETATTR_FH;
  gfh.fh = fh3;
  call(rc, s2, FUSE_GETATTR, stat, 103, &gfh, sizeof(gfh), &r);
  check(r.out.error == 0 && s2->getattr_fh == 0 && s2->opens == 2, "GETATTR with an old handle: asked by path instead, nothing reopened");

  check(lookup(rc, s2, proc, "meminfo", &r) == meminfo && ((struct fuse_entry_out *) r.payload)->attr.ino == meminfo, "the same path gets the same id from the next daemon");
  uint64_t dev = lookup(rc, s2, sys, "devices", &r);
  check(dev == 6, "a new path: the next id after the recorded ones");
  uint64_t fh4 = do_open(rc, s2, FUSE_OPEN, stat, 107);
  check(fh4 == ((2ULL << RESUME_FH_GENERATION_SHIFT) | 1), "new handles are of generation 2: never equal to an old one");

  call_answered_here(rc, s2, FUSE_GETATTR, 99, &ga, sizeof(ga), &r);
  check(r.out.error == -EIO && s2->unknown_node == 0, "an id never given out: EIO here, not the session's problem");
  call_answered_here(rc, s2, 46 /* FUSE_LSEEK */, meminfo, &ga, sizeof(ga), &r);
  check(r.out.error == -ENOSYS, "an operation libfuse 2.9 does not know: ENOSYS, as libfuse answers");
  {
    char bad[sizeof(struct fuse_in_header) + 8];
    struct fuse_in_header *in = (struct fuse_in_header *) bad;
    memset(bad, 0, sizeof(bad));
    in->len = sizeof(bad) + 4; // says more than was read
    in->opcode = FUSE_GETATTR;
    in->unique = 7000;
    in->nodeid = 1;
    if (write(kfd, bad, sizeof(bad)) != (ssize_t) sizeof(bad)) die("write");
    ksend(FUSE_GETATTR, 1, 1, &ga, sizeof(ga));
    serve_one(rc, s2);
    krecv(&r);
    check(r.out.unique == 7000 && r.out.error == -EIO, "a request whose length is wrong: EIO");
    krecv(&r);
  }

  resume_chan_stats(rc, &st);
  check(st.resumed && st.generation == 2 && st.resend == 0 && st.reopened == 3 && st.stale_answered == 1 && st.lookups_injected == 4 && st.in_flight == 0, "stats: resumed, generation 2, resend accepted, 3 reopened, 1 answered here, 4 lookups made up (/proc, meminfo, stat, /sys)");
  check(resume_state_inspect(resume_chan_state_fd(rc), &info) == 0 && info.nodes == 5 && info.generation == 2, "the state now has 5 paths, generation 2");

  // The connection goes away: the session ends.
  close(kfd);
  kfd = -1;
  check(resume_chan_receive(rc, rbuf, sizeof(rbuf)) == 0 && s2->exited, "no more kernel: receive returns 0 and ends the session");
  resume_chan_free(rc);
  session_free(s2);
  close(dfd);
}

// ---- states that must not be used ----

static int corrupt_copy (int state_fd, void (*corrupt)(char *map, size_t size)) {
  struct stat st;
  if (fstat(state_fd, &st) != 0) die("fstat");
  int fd = memfd_create("corrupt", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ftruncate(fd, st.st_size) != 0) die("memfd");
  char *src = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_SHARED, state_fd, 0);
  char *dst = mmap(NULL, (size_t) st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (src == MAP_FAILED || dst == MAP_FAILED) die("mmap");
  // Only the header, the first records and the first names hold data here; copying all of it would
  // touch every page. names_offset is at byte 72 of the header.
  uint64_t names_offset;
  memcpy(&names_offset, src + 72, 8);
  memcpy(dst, src, 2 * 4096);
  if (names_offset + 4096 <= (uint64_t) st.st_size) memcpy(dst + names_offset, src + names_offset, 4096);
  corrupt(dst, (size_t) st.st_size);
  munmap(src, (size_t) st.st_size);
  munmap(dst, (size_t) st.st_size);
  return fd;
}

// Offsets of the state layout that the corruptions below touch (resume-chan.c: the header is
// magic[16], version, header_size, total_size, generation, node_capacity, node_count, ...; records
// start at 4096 and are {parent, name_off, name_len, reserved}).
static void break_magic (char *m, size_t size) { m[0] ^= 1; }
static void break_version (char *m, size_t size) { m[16] = 2; }
static void forward_parent (char *m, size_t size) { memcpy(m + 4096, (uint64_t[]){ 5 }, 8); } // record 0's parent: a later one
static void torn_tail (char *m, size_t size) {
  // Garbage in the record after the published ones (a daemon killed while writing it).
  memset(m + 4096 + 24 * 2, 0xff, 24);
}

static void test_states (void) {
  make_pair();
  resume_chan_t *rc = NULL;
  resume_chan_new(dfd, -1, "/m", &rc);
  fake_session_t *s = session_new(1, rc);
  kreply_t r;
  struct fuse_init_in init = kernel_init();
  call(rc, s, FUSE_INIT, 0, 0, &init, sizeof(init), &r);
  lookup(rc, s, 1, "proc", &r);
  lookup(rc, s, 2, "stat", &r);
  int state = resume_chan_state_fd(rc);
  resume_state_info_t info;

  int seals = fcntl(state, F_GET_SEALS);
  check(seals >= 0 && (seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW) && (seals & F_SEAL_SEAL), "the state memfd is sealed against resizing");
  int fd = corrupt_copy(state, break_magic);
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
  check(resume_state_inspect(fd, &info) == -EPROTO, "a wrong magic: not a state");
  close(fd);
  fd = corrupt_copy(state, break_version);
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
  check(resume_state_inspect(fd, &info) == -EPROTO, "another version: refused");
  close(fd);
  fd = corrupt_copy(state, forward_parent);
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
  check(resume_state_inspect(fd, &info) == -EPROTO, "a record whose parent is not an earlier one: refused (walking up must end)");
  close(fd);
  fd = corrupt_copy(state, break_magic);
  check(resume_state_inspect(fd, &info) == -EPROTO, "a memfd that could shrink under the mapping: refused");
  close(fd);
  fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  check(resume_state_inspect(fd, &info) == -EPROTO, "not a memfd: refused");
  resume_chan_t *none = NULL;
  check(resume_chan_new(dfd, fd, NULL, &none) == -EPROTO && none == NULL, "a channel refuses it too (and closes it)");
  check(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "(closed)");

  fd = corrupt_copy(state, torn_tail);
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
  check(resume_state_inspect(fd, &info) == 0 && info.nodes == 2, "a torn record past the published count: ignored");
  resume_chan_t *rc2 = NULL;
  check(resume_chan_new(dfd, fd, NULL, &rc2) == 0, "and the state is usable");
  fake_session_t *s2 = session_new(2, rc2);
  // (no INIT replay test here: the next request is a lookup after the replay)
  ksend(FUSE_LOOKUP, 1, 1, "sys", 4);
  serve_one(rc2, s2);
  krecv(&r);
  check(r.out.error == 0 && ((struct fuse_entry_out *) r.payload)->nodeid == 4, "the next path takes the torn record's place (id 4)");
  resume_chan_free(rc2);
  session_free(s2);

  resume_chan_free(rc);
  session_free(s);
  close(kfd);
  close(dfd);
}

// ---- hand-over: park ----

static resume_chan_t *parked_rc; // reachable to the end (its thread never leaves)
static fake_session_t *parked_session;

static void *park_worker (void *arg) {
  (void) arg;
  resume_chan_receive(parked_rc, rbuf, sizeof(rbuf));
  return NULL;
}

static void test_park (void) {
  make_pair();
  resume_chan_new(dfd, -1, "/m", &parked_rc);
  parked_session = session_new(1, parked_rc);
  kreply_t r;
  struct fuse_init_in init = kernel_init();
  call(parked_rc, parked_session, FUSE_INIT, 0, 0, &init, sizeof(init), &r);
  resume_chan_park(parked_rc);
  pthread_t t;
  pthread_create(&t, NULL, park_worker, NULL);
  pthread_detach(t);
  struct fuse_getattr_in ga;
  memset(&ga, 0, sizeof(ga));
  ksend(FUSE_GETATTR, 1, 1, &ga, sizeof(ga));
  resume_chan_stats_t st;
  resume_chan_stats(parked_rc, &st);
  // Whenever the worker runs, it parks before reading: the request stays queued for the next daemon.
  check(st.parked && daemon_pending() && !kpending(), "parked: a worker reads nothing more; the request stays in the kernel's queue");
}

// ---- the hammer ----

#define WORKERS 6
#define CALLERS 6
#define ROUNDS 300

typedef struct kcall {
  uint64_t unique;
  int done;
  kreply_t r;
  struct kcall *next;
} kcall_t;

static pthread_mutex_t kcalls_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kcalls_cond = PTHREAD_COND_INITIALIZER;
static kcall_t *kcalls;
static atomic_uint_fast64_t hammer_unique;
static atomic_int notifications;

static void *dispatcher (void *arg) {
  (void) arg;
  for (;;) {
    kreply_t *r = malloc(sizeof(*r));
    char msg[sizeof(r->out) + sizeof(r->payload)];
    ssize_t n = read(kfd, msg, sizeof(msg));
    if (n <= 0) {
      free(r);
      return NULL;
    }
    memcpy(&r->out, msg, sizeof(r->out));
    r->len = (size_t) n - sizeof(r->out);
    memcpy(r->payload, msg + sizeof(r->out), r->len);
    if (r->out.unique == 0) {
      atomic_fetch_add(&notifications, 1);
      free(r);
      continue;
    }
    pthread_mutex_lock(&kcalls_lock);
    for (kcall_t *c = kcalls; c != NULL; c = c->next) {
      if (c->unique == r->out.unique && !c->done) {
        c->r = *r;
        c->done = 1;
        break;
      }
    }
    pthread_cond_broadcast(&kcalls_cond);
    pthread_mutex_unlock(&kcalls_lock);
    free(r);
  }
}

static void hcall (uint32_t opcode, uint64_t nodeid, uint32_t pid, uint32_t uid, const void *body, size_t blen, kreply_t *out) {
  kcall_t c;
  memset(&c, 0, sizeof(c));
  c.unique = atomic_fetch_add(&hammer_unique, 2) + 2;
  pthread_mutex_lock(&kcalls_lock);
  c.next = kcalls;
  kcalls = &c;
  pthread_mutex_unlock(&kcalls_lock);
  char msg[512];
  struct fuse_in_header *in = (struct fuse_in_header *) msg;
  memset(in, 0, sizeof(*in));
  in->len = (uint32_t) (sizeof(*in) + blen);
  in->opcode = opcode;
  in->unique = c.unique;
  in->nodeid = nodeid;
  in->uid = uid;
  in->pid = pid;
  if (blen > 0) memcpy(msg + sizeof(*in), body, blen);
  if (write(kfd, msg, in->len) != (ssize_t) in->len) die("hammer write");
  pthread_mutex_lock(&kcalls_lock);
  while (!c.done) pthread_cond_wait(&kcalls_cond, &kcalls_lock);
  for (kcall_t **p = &kcalls; *p != NULL; p = &(*p)->next) {
    if (*p == &c) {
      *p = c.next;
      break;
    }
  }
  pthread_mutex_unlock(&kcalls_lock);
  if (out != NULL) *out = c.r;
}

typedef struct {
  resume_chan_t *rc;
  fake_session_t *s;
} worker_arg_t;

static void *worker (void *arg) {
  worker_arg_t *w = arg;
  char *buf = malloc(0x21000);
  worker_quit = 0;
  while (!worker_quit) {
    int n = resume_chan_receive(w->rc, buf, 0x21000);
    if (n == -EINTR) continue;
    if (n <= 0) break;
    fake_process(w->s, buf, (size_t) n);
  }
  free(buf);
  return NULL;
}

static void start_workers (pthread_t *t, worker_arg_t *w) {
  for (int i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, worker, w);
}

static void stop_workers (pthread_t *t) {
  for (int i = 0; i < WORKERS; i++) hcall(FUSE_STATFS, 1, 1, 4242, NULL, 0, NULL);
  for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
}

static uint64_t h_meminfo, h_stat, h_cpu;
static uint64_t old_handles[CALLERS][4];
static atomic_int hammer_errors;

static void *caller_phase1 (void *arg) {
  int id = (int) (intptr_t) arg;
  kreply_t r;
  for (int round = 0; round < ROUNDS; round++) {
    uint64_t node = round % 2 ? h_meminfo : h_stat;
    hcall(FUSE_LOOKUP, 1, (uint32_t) id, 0, "proc", 5, &r);
    if (r.out.error != 0 || ((struct fuse_entry_out *) r.payload)->nodeid != 2) atomic_fetch_add(&hammer_errors, 1);
    struct fuse_open_in o = { .flags = O_RDONLY };
    hcall(FUSE_OPEN, node, (uint32_t) id, 0, &o, sizeof(o), &r);
    uint64_t fh = ((struct fuse_open_out *) r.payload)->fh;
    struct fuse_read_in rd = read_in(fh);
    hcall(FUSE_READ, node, (uint32_t) id, 0, &rd, sizeof(rd), &r);
    char want[64];
    snprintf(want, sizeof(want), "file s1:/proc/%s:%d", node == h_meminfo ? "meminfo" : "stat", id);
    if (r.out.error != 0 || strcmp(text_of(&r), want) != 0) atomic_fetch_add(&hammer_errors, 1);
    struct fuse_forget_in fg = { .nlookup = 1 };
    char fmsg[sizeof(struct fuse_in_header) + sizeof(fg)];
    struct fuse_in_header *in = (struct fuse_in_header *) fmsg;
    memset(in, 0, sizeof(*in));
    in->len = sizeof(fmsg);
    in->opcode = FUSE_FORGET;
    in->unique = atomic_fetch_add(&hammer_unique, 2) + 2;
    in->nodeid = 2;
    memcpy(fmsg + sizeof(*in), &fg, sizeof(fg));
    if (write(kfd, fmsg, sizeof(fmsg)) != (ssize_t) sizeof(fmsg)) die("write");
    struct fuse_release_in rel;
    memset(&rel, 0, sizeof(rel));
    rel.fh = fh;
    hcall(FUSE_RELEASE, node, (uint32_t) id, 0, &rel, sizeof(rel), &r);
  }
  // Handles left open across the restart.
  for (int k = 0; k < 4; k++) {
    struct fuse_open_in o = { .flags = O_RDONLY };
    uint64_t node = k < 2 ? h_meminfo : (k == 2 ? h_stat : h_cpu);
    hcall(k == 3 ? FUSE_OPENDIR : FUSE_OPEN, node, (uint32_t) id, 0, &o, sizeof(o), &r);
    old_handles[id][k] = ((struct fuse_open_out *) r.payload)->fh;
  }
  return NULL;
}

static void *caller_phase2 (void *arg) {
  int id = (int) (intptr_t) arg;
  kreply_t r;
  // Every caller reads every caller's old handles: each handle is read by several threads at once.
  for (int round = 0; round < 20; round++) {
    for (int other = 0; other < CALLERS; other++) {
      int k = (round + other) % 4;
      uint64_t node = k < 2 ? h_meminfo : (k == 2 ? h_stat : h_cpu);
      struct fuse_read_in rd = read_in(old_handles[other][k]);
      hcall(k == 3 ? FUSE_READDIR : FUSE_READ, node, (uint32_t) (100 + id), 0, &rd, sizeof(rd), &r);
      if (r.out.error != 0 || strstr(text_of(&r), " s2:/") == NULL) atomic_fetch_add(&hammer_errors, 1);
    }
  }
  return NULL;
}

static void test_hammer (void) {
  make_pair();
  pthread_t disp;
  pthread_create(&disp, NULL, dispatcher, NULL);
  resume_chan_t *rc = NULL;
  resume_chan_new(dfd, -1, "/m", &rc);
  fake_session_t *s1 = session_new(1, rc);
  worker_arg_t w1 = { rc, s1 };
  pthread_t workers[WORKERS];
  start_workers(workers, &w1);

  kreply_t r;
  struct fuse_init_in init = kernel_init();
  hcall(FUSE_INIT, 0, 0, 0, &init, sizeof(init), &r);
  hcall(FUSE_LOOKUP, 1, 1, 0, "proc", 5, &r);
  hcall(FUSE_LOOKUP, 2, 1, 0, "meminfo", 8, &r);
  h_meminfo = ((struct fuse_entry_out *) r.payload)->nodeid;
  hcall(FUSE_LOOKUP, 2, 1, 0, "stat", 5, &r);
  h_stat = ((struct fuse_entry_out *) r.payload)->nodeid;
  hcall(FUSE_LOOKUP, 1, 1, 0, "sys", 4, &r);
  uint64_t k = ((struct fuse_entry_out *) r.payload)->nodeid;
  hcall(FUSE_LOOKUP, k, 1, 0, "devices", 8, &r);
  k = ((struct fuse_entry_out *) r.payload)->nodeid;
  hcall(FUSE_LOOKUP, k, 1, 0, "system", 7, &r);
  k = ((struct fuse_entry_out *) r.payload)->nodeid;
  hcall(FUSE_LOOKUP, k, 1, 0, "cpu", 4, &r);
  h_cpu = ((struct fuse_entry_out *) r.payload)->nodeid;

  pthread_t callers[CALLERS];
  for (int i = 0; i < CALLERS; i++) pthread_create(&callers[i], NULL, caller_phase1, (void *) (intptr_t) i);
  for (int i = 0; i < CALLERS; i++) pthread_join(callers[i], NULL);
  stop_workers(workers);
  resume_chan_stats_t st;
  resume_chan_stats(rc, &st);
  check(atomic_load(&hammer_errors) == 0, "hammer: concurrent lookups, opens, reads, forgets and releases all answered right");
  check(st.nodes == 7 && st.handles == CALLERS * 4 && st.in_flight == 0 && st.forgets_dropped == CALLERS * ROUNDS, "hammer: one id per path, only the handles left open are mapped, every forget dropped");
  check(s1->unknown_node == 0 && s1->unknown_fh == 0 && s1->forgets == 0, "hammer: the session never saw a kernel id, a kernel handle or a forget");

  int state_copy = dup(resume_chan_state_fd(rc));
  resume_chan_free(rc);
  session_free(s1);

  rc = NULL;
  resume_chan_new(dfd, state_copy, NULL, &rc);
  fake_session_t *s2 = session_new(2, rc);
  worker_arg_t w2 = { rc, s2 };
  start_workers(workers, &w2);
  for (int i = 0; i < CALLERS; i++) pthread_create(&callers[i], NULL, caller_phase2, (void *) (intptr_t) i);
  for (int i = 0; i < CALLERS; i++) pthread_join(callers[i], NULL);
  check(atomic_load(&hammer_errors) == 0, "hammer: after the restart every read of every old handle, from several callers at once, is served by the new session");
  check(s2->inits == 1 && s2->unknown_node == 0 && s2->unknown_fh == 0, "hammer: INIT played once; the new session never saw an old id or handle");
  check(open_handles(s2) == CALLERS * 4 && s2->opens == CALLERS * 3 && s2->opendirs == CALLERS, "hammer: each old handle was opened again exactly once");
  for (int i = 0; i < CALLERS; i++) {
    for (int j = 0; j < 4; j++) {
      struct fuse_release_in rel;
      memset(&rel, 0, sizeof(rel));
      rel.fh = old_handles[i][j];
      hcall(j == 3 ? FUSE_RELEASEDIR : FUSE_RELEASE, j < 2 ? h_meminfo : (j == 2 ? h_stat : h_cpu), 1, 0, &rel, sizeof(rel), &r);
    }
  }
  check(open_handles(s2) == 0, "hammer: their releases close them all in the new session");
  stop_workers(workers);
  resume_chan_stats(rc, &st);
  check(st.handles == 0 && st.in_flight == 0 && atomic_load(&notifications) == 2, "hammer: no handle left mapped, nothing in flight, one resend request per channel");
  resume_chan_free(rc);
  session_free(s2);
  shutdown(kfd, SHUT_RDWR);
  pthread_join(disp, NULL);
  close(kfd);
  close(dfd);
}

int main (int argc, char **argv) {
  int hammer = argc > 1 && strcmp(argv[1], "--hammer") == 0;
  if (hammer) {
    test_hammer();
  } else {
    test_restart();
    test_states();
    test_park();
  }
  printf("1..%d\n", checks);
  return failures > 0 ? 1 : 0;
}
