// lxcfs-ts: a FUSE channel that can outlive its daemon. See resume-chan.h for what it does and why.

#define _GNU_SOURCE

#include "resume-chan.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// Linux 6.9 (protocol 7.40); the uapi headers of this build may be older.
#ifndef FUSE_NOTIFY_RESEND
#define FUSE_NOTIFY_RESEND 7
#endif

// Requests made up here carry this bit in their unique: the kernel's are even counters far below it
// (resent ones have bit 63, interrupts bit 0), so a reply is never mistaken for the other's.
#define INJECTED_UNIQUE (1ULL << 62)
#define ROOT_ID 1ULL
#define NAME_MAX_BYTES 1024  // the kernel's FUSE_NAME_MAX
#define MAX_DEPTH 256        // path components; the served tree is a few levels deep

static const char STATE_MAGIC[16] = "lxcfs-ts fuse\n";

// The state memfd: this header, then the node records, then their names. Shared with the next daemon
// (through the descriptor store), so its layout is versioned and checked before use.
typedef struct {
  char magic[16];
  uint32_t version;
  uint32_t header_size;
  uint64_t total_size;
  uint64_t generation;
  uint32_t node_capacity;
  uint32_t node_count;       // records published (written with release order after the record itself)
  uint64_t names_capacity;
  uint64_t names_used;
  uint64_t nodes_offset;
  uint64_t names_offset;
  uint32_t init_len;
  uint32_t reserved;
  uint8_t init[RESUME_INIT_MAX];
  char mountpoint[1024];
  char device[64];
} state_header_t;

// One path: the kernel id of its directory and its name. The path's own kernel id is its index + 2.
typedef struct {
  uint64_t parent;
  uint64_t name_off;
  uint32_t name_len;
  uint32_t reserved;
} node_rec_t;

typedef struct fh_entry {
  struct fh_entry *next;
  uint64_t kfh;   // what the kernel holds
  uint64_t llfh;  // the session's handle
} fh_entry_t;

// A request handed to the session and not answered yet, with what its reply needs to be translated. Made
// up requests have one on the stack of the thread that runs them, with a place for the reply.
typedef struct pending {
  struct pending *next;
  uint64_t unique;
  uint32_t opcode;
  int injected;
  uint64_t kid;         // the request's node as the kernel knows it (LOOKUP & co: the directory)
  uint64_t node;        // the same node in the session
  char *name;           // LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE: the new entry's name
  uint32_t name_len;
  int captured;         // injected: the reply came
  int32_t error;
  void *out;
  size_t cap;
  size_t out_len;
} pending_t;

#define PENDING_BUCKETS 1024

struct resume_chan {
  int fd;
  int state_fd;
  state_header_t *hdr;
  size_t map_size;
  node_rec_t *recs;
  char *names;
  int resumed;
  resume_session_t session;

  pthread_mutex_t lock;           // everything below but the atomics
  pthread_mutex_t inject_lock;    // one made-up request sequence at a time
  atomic_int started;             // resume_chan_start ran: resend asked (or probed), INIT replayed when resuming

  uint32_t *index;                // (parent, name) -> record index + 1, open addressing
  uint32_t index_mask;
  uint64_t *llid;                 // per record: the session's node id, 0 while unknown

  fh_entry_t **fh_buckets;
  size_t fh_nbuckets;
  size_t fh_count;
  uint64_t fh_next;               // counter of this generation's handles

  pending_t *pending[PENDING_BUCKETS];
  uint32_t in_flight;
  uint64_t inject_seq;

  atomic_int parked;
  sem_t park_sem;                 // never posted: parked threads wait on it until the process exits

  uint64_t lookups_injected;
  uint64_t reopened;
  uint64_t stale_answered;
  uint64_t forgets_dropped;
  int resend;
};

// ---- the state memfd ----

static size_t round_up (size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

static void state_layout (state_header_t *h, uint32_t node_capacity, uint64_t names_capacity) {
  h->header_size = sizeof(state_header_t);
  h->node_capacity = node_capacity;
  h->names_capacity = names_capacity;
  h->nodes_offset = round_up(sizeof(state_header_t), 4096);
  h->names_offset = round_up(h->nodes_offset + (uint64_t) node_capacity * sizeof(node_rec_t), 4096);
  h->total_size = round_up(h->names_offset + names_capacity, 4096);
}

static int valid_name (const char *s, uint32_t len) {
  if (len == 0 || len > NAME_MAX_BYTES) return 0;
  if (len == 1 && s[0] == '.') return 0;
  if (len == 2 && s[0] == '.' && s[1] == '.') return 0;
  for (uint32_t i = 0; i < len; i++) if (s[i] == '/' || s[i] == '\0') return 0;
  return 1;
}

// The checks every state passes before it is used: its own layout, the recorded INIT, and every
// published record (a parent is the root or an earlier record, so walking up always ends).
static int state_check (const state_header_t *h, size_t size, uint32_t *count_out) {
  if (size < sizeof(state_header_t)) return -EPROTO;
  if (memcmp(h->magic, STATE_MAGIC, sizeof(STATE_MAGIC)) != 0) return -EPROTO;
  if (h->version != RESUME_STATE_VERSION || h->header_size != sizeof(state_header_t)) return -EPROTO;
  if (h->total_size != size || h->node_capacity == 0 || h->node_capacity > (1u << 24)) return -EPROTO;
  if (h->names_capacity == 0 || h->names_capacity > (1ULL << 32)) return -EPROTO;
  state_header_t want;
  state_layout(&want, h->node_capacity, h->names_capacity);
  if (want.nodes_offset != h->nodes_offset || want.names_offset != h->names_offset || want.total_size != h->total_size) return -EPROTO;
  if (memchr(h->mountpoint, 0, sizeof(h->mountpoint)) == NULL || memchr(h->device, 0, sizeof(h->device)) == NULL) return -EPROTO;
  uint32_t init_len = __atomic_load_n(&h->init_len, __ATOMIC_ACQUIRE);
  if (init_len != 0) {
    const struct fuse_in_header *in = (const struct fuse_in_header *) h->init;
    if (init_len > RESUME_INIT_MAX || init_len < sizeof(*in) + 8 || in->opcode != FUSE_INIT || in->len != init_len) return -EPROTO;
  }
  uint32_t count = __atomic_load_n(&h->node_count, __ATOMIC_ACQUIRE);
  if (count > h->node_capacity) return -EPROTO;
  const node_rec_t *recs = (const node_rec_t *) ((const char *) h + h->nodes_offset);
  const char *names = (const char *) h + h->names_offset;
  for (uint32_t i = 0; i < count; i++) {
    const node_rec_t *r = &recs[i];
    if (r->parent != ROOT_ID && (r->parent < 2 || r->parent - 2 >= i)) return -EPROTO;
    if (r->name_off > h->names_capacity || r->name_len > h->names_capacity - r->name_off) return -EPROTO;
    if (!valid_name(names + r->name_off, r->name_len)) return -EPROTO;
  }
  *count_out = count;
  return 0;
}

static int state_map (int fd, int writable, state_header_t **out, size_t *size_out) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size < sizeof(state_header_t)) return -EPROTO;
  // A memfd that could shrink under the mapping would fault (SIGBUS): only sealed ones are used.
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) return -EPROTO;
  void *p = mmap(NULL, (size_t) st.st_size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  *out = (state_header_t *) p;
  *size_out = (size_t) st.st_size;
  return 0;
}

int resume_state_inspect (int state_fd, resume_state_info_t *out) {
  state_header_t *h = NULL;
  size_t size = 0;
  int r = state_map(state_fd, 0, &h, &size);
  if (r < 0) return r;
  uint32_t count = 0;
  r = state_check(h, size, &count);
  if (r == 0) {
    memset(out, 0, sizeof(*out));
    out->version = h->version;
    out->generation = h->generation;
    out->nodes = count;
    out->init_len = h->init_len;
    memcpy(out->mountpoint, h->mountpoint, sizeof(out->mountpoint));
    memcpy(out->device, h->device, sizeof(out->device));
  }
  munmap(h, size);
  return r;
}

static int state_create (const char *mountpoint, state_header_t **out, size_t *size_out) {
  int fd = memfd_create("lxcfs-ts-fuse-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -errno;
  state_header_t layout;
  memset(&layout, 0, sizeof(layout));
  state_layout(&layout, RESUME_NODE_CAPACITY, RESUME_NAMES_CAPACITY);
  // Sparse: only the pages written (the header, the records and names of the paths used) take memory.
  if (ftruncate(fd, (off_t) layout.total_size) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  void *p = mmap(NULL, layout.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd);
    return -err;
  }
  state_header_t *h = (state_header_t *) p;
  *h = layout;
  memcpy(h->magic, STATE_MAGIC, sizeof(STATE_MAGIC));
  h->version = RESUME_STATE_VERSION;
  h->generation = 1;
  snprintf(h->mountpoint, sizeof(h->mountpoint), "%s", mountpoint != NULL ? mountpoint : "");
  *out = h;
  *size_out = layout.total_size;
  return fd;
}

// ---- tables (rc->lock held) ----

static uint64_t hash_name (uint64_t parent, const char *name, uint32_t len) {
  uint64_t h = 1469598103934665603ULL ^ parent;  // FNV-1a
  for (uint32_t i = 0; i < len; i++) {
    h ^= (unsigned char) name[i];
    h *= 1099511628211ULL;
  }
  return h ^ (h >> 29);
}

static const char *rec_name (const resume_chan_t *rc, const node_rec_t *r) {
  return rc->names + r->name_off;
}

static void index_insert (resume_chan_t *rc, uint32_t i) {
  const node_rec_t *r = &rc->recs[i];
  uint64_t h = hash_name(r->parent, rec_name(rc, r), r->name_len);
  for (uint32_t slot = (uint32_t) h & rc->index_mask;; slot = (slot + 1) & rc->index_mask) {
    if (rc->index[slot] == 0) {
      rc->index[slot] = i + 1;
      return;
    }
  }
}

// The record of (parent, name), or -1.
static int64_t index_find (const resume_chan_t *rc, uint64_t parent, const char *name, uint32_t len) {
  uint64_t h = hash_name(parent, name, len);
  for (uint32_t slot = (uint32_t) h & rc->index_mask;; slot = (slot + 1) & rc->index_mask) {
    uint32_t v = rc->index[slot];
    if (v == 0) return -1;
    const node_rec_t *r = &rc->recs[v - 1];
    if (r->parent == parent && r->name_len == len && memcmp(rec_name(rc, r), name, len) == 0) return v - 1;
  }
}

static uint32_t node_count (const resume_chan_t *rc) {
  return __atomic_load_n(&rc->hdr->node_count, __ATOMIC_ACQUIRE);
}

// The kernel id of (parent, name), recorded in the state when new: the record and its name are written
// first and published by the count, so a daemon killed in between leaves no half record behind.
// Returns 0 when the state is full or the name is unusable.
static uint64_t node_intern (resume_chan_t *rc, uint64_t parent, const char *name, uint32_t len) {
  if (!valid_name(name, len)) return 0;
  int64_t found = index_find(rc, parent, name, len);
  if (found >= 0) return (uint64_t) found + 2;
  state_header_t *h = rc->hdr;
  uint32_t count = node_count(rc);
  if (count >= h->node_capacity || len > h->names_capacity - h->names_used) return 0;
  node_rec_t *r = &rc->recs[count];
  memcpy(rc->names + h->names_used, name, len);
  r->parent = parent;
  r->name_off = h->names_used;
  r->name_len = len;
  r->reserved = 0;
  h->names_used += len;
  __atomic_store_n(&h->node_count, count + 1, __ATOMIC_RELEASE);
  index_insert(rc, count);
  return (uint64_t) count + 2;
}

static fh_entry_t **fh_slot (resume_chan_t *rc, uint64_t kfh) {
  uint64_t h = kfh * 0x9E3779B97F4A7C15ULL;
  fh_entry_t **p = &rc->fh_buckets[(h >> 32) & (rc->fh_nbuckets - 1)];
  while (*p != NULL && (*p)->kfh != kfh) p = &(*p)->next;
  return p;
}

static void fh_grow (resume_chan_t *rc) {
  size_t n = rc->fh_nbuckets * 2;
  fh_entry_t **b = calloc(n, sizeof(*b));
  if (b == NULL) return; // longer chains, still correct
  fh_entry_t **old = rc->fh_buckets;
  size_t old_n = rc->fh_nbuckets;
  rc->fh_buckets = b;
  rc->fh_nbuckets = n;
  for (size_t i = 0; i < old_n; i++) {
    fh_entry_t *e = old[i];
    while (e != NULL) {
      fh_entry_t *next = e->next;
      fh_entry_t **slot = fh_slot(rc, e->kfh);
      e->next = NULL;
      *slot = e;
      e = next;
    }
  }
  free(old);
}

static int fh_put (resume_chan_t *rc, uint64_t kfh, uint64_t llfh) {
  fh_entry_t **slot = fh_slot(rc, kfh);
  if (*slot != NULL) {
    (*slot)->llfh = llfh;
    return 0;
  }
  fh_entry_t *e = malloc(sizeof(*e));
  if (e == NULL) return -ENOMEM;
  e->next = NULL;
  e->kfh = kfh;
  e->llfh = llfh;
  *slot = e;
  if (++rc->fh_count > rc->fh_nbuckets * 2) fh_grow(rc);
  return 0;
}

// The session's handle for kfh (and drops the mapping when take). 0 when there is none.
static int fh_get (resume_chan_t *rc, uint64_t kfh, int take, uint64_t *llfh) {
  fh_entry_t **slot = fh_slot(rc, kfh);
  fh_entry_t *e = *slot;
  if (e == NULL) return 0;
  *llfh = e->llfh;
  if (take) {
    *slot = e->next;
    free(e);
    rc->fh_count--;
  }
  return 1;
}

static uint64_t fh_new (resume_chan_t *rc) {
  if (rc->fh_next >= (1ULL << RESUME_FH_GENERATION_SHIFT) - 1) {
    // 2^40 opens in one generation: move on to a new one (its handles cannot meet older ones either).
    rc->hdr->generation++;
    rc->fh_next = 0;
  }
  return (rc->hdr->generation << RESUME_FH_GENERATION_SHIFT) | ++rc->fh_next;
}

static pending_t **pending_slot (resume_chan_t *rc, uint64_t unique) {
  uint64_t h = unique * 0x9E3779B97F4A7C15ULL;
  pending_t **p = &rc->pending[(h >> 40) & (PENDING_BUCKETS - 1)];
  while (*p != NULL && (*p)->unique != unique) p = &(*p)->next;
  return p;
}

// 0, or -EEXIST when a request with that unique waits already (the kernel never reuses one that waits).
static int pending_add (resume_chan_t *rc, pending_t *p) {
  pending_t **slot = pending_slot(rc, p->unique);
  if (*slot != NULL) return -EEXIST;
  p->next = NULL;
  *slot = p;
  if (!p->injected) rc->in_flight++;
  return 0;
}

static pending_t *pending_take (resume_chan_t *rc, uint64_t unique) {
  pending_t **slot = pending_slot(rc, unique);
  pending_t *p = *slot;
  if (p == NULL) return NULL;
  *slot = p->next;
  p->next = NULL;
  if (!p->injected) rc->in_flight--;
  return p;
}

static void pending_free (pending_t *p) {
  if (p == NULL || p->injected) return;
  free(p->name);
  free(p);
}

// ---- talking to the kernel ----

static int write_iov (resume_chan_t *rc, const struct iovec *iov, int count) {
  ssize_t n = writev(rc->fd, iov, count);
  return n < 0 ? -errno : 0;
}

// Answers a kernel request here, without the session.
static void reply_direct (resume_chan_t *rc, uint64_t unique, int error) {
  struct fuse_out_header out = { .len = sizeof(out), .error = error, .unique = unique };
  struct iovec iov = { .iov_base = &out, .iov_len = sizeof(out) };
  if (unique != 0) write_iov(rc, &iov, 1);
}

// ---- made-up requests (rc->inject_lock held, cancellation disabled) ----

static uint64_t next_injected_unique (resume_chan_t *rc) {
  pthread_mutex_lock(&rc->lock);
  uint64_t u = INJECTED_UNIQUE | (++rc->inject_seq << 1);
  pthread_mutex_unlock(&rc->lock);
  return u;
}

// Runs a request through the session on this thread and keeps its reply: returns its error (0 or -errno;
// -EIO when no reply came) and copies up to cap bytes of the reply's payload to out.
static int inject (resume_chan_t *rc, char *req, size_t len, void *out, size_t cap, size_t *out_len) {
  struct fuse_in_header *in = (struct fuse_in_header *) req;
  pending_t p;
  memset(&p, 0, sizeof(p));
  p.unique = in->unique = next_injected_unique(rc);
  p.opcode = in->opcode;
  p.injected = 1;
  p.out = out;
  p.cap = cap;
  in->len = (uint32_t) len;
  pthread_mutex_lock(&rc->lock);
  pending_add(rc, &p);
  pthread_mutex_unlock(&rc->lock);
  rc->session.process(rc->session.ctx, req, len);
  pthread_mutex_lock(&rc->lock);
  pending_t *left = pending_take(rc, p.unique); // no reply came: take it off the table
  (void) left;
  pthread_mutex_unlock(&rc->lock);
  if (out_len != NULL) *out_len = p.out_len;
  return p.captured ? p.error : -EIO;
}

// The session's node id for a kernel id, asking the session (LOOKUP, from the root down) for every part
// of its path it has not seen yet. Positive id, or -errno.
static int64_t session_node (resume_chan_t *rc, uint64_t kid) {
  if (kid == ROOT_ID) return ROOT_ID;
  pthread_mutex_lock(&rc->lock);
  uint32_t count = node_count(rc);
  uint64_t known = (kid >= 2 && kid - 2 < count) ? rc->llid[kid - 2] : 0;
  pthread_mutex_unlock(&rc->lock);
  if (kid < 2 || kid - 2 >= count) return -EIO; // not an id this connection ever gave out
  if (known != 0) return (int64_t) known;

  pthread_mutex_lock(&rc->inject_lock);
  // The path's records, leaf first, up to the first one the session knows (or the root).
  uint32_t chain[MAX_DEPTH];
  int depth = 0;
  uint64_t parent_llid = ROOT_ID;
  int64_t result = -EIO;
  pthread_mutex_lock(&rc->lock);
  for (uint64_t k = kid; k != ROOT_ID;) {
    uint32_t i = (uint32_t) (k - 2);
    if (rc->llid[i] != 0 && k != kid) {
      parent_llid = rc->llid[i];
      break;
    }
    if (rc->llid[i] != 0) { // another thread found it meanwhile
      result = (int64_t) rc->llid[i];
      depth = -1;
      break;
    }
    if (depth == MAX_DEPTH) {
      depth = -2;
      break;
    }
    chain[depth++] = i;
    k = rc->recs[i].parent;
  }
  pthread_mutex_unlock(&rc->lock);
  if (depth == -1) {
    pthread_mutex_unlock(&rc->inject_lock);
    return result;
  }
  if (depth < 0) {
    pthread_mutex_unlock(&rc->inject_lock);
    return -ELOOP;
  }
  char req[sizeof(struct fuse_in_header) + NAME_MAX_BYTES + 1];
  for (int d = depth - 1; d >= 0; d--) {
    uint32_t i = chain[d];
    const node_rec_t *r = &rc->recs[i]; // published records never change
    struct fuse_in_header *in = (struct fuse_in_header *) req;
    memset(in, 0, sizeof(*in));
    in->opcode = FUSE_LOOKUP;
    in->nodeid = parent_llid;
    // The daemon itself asks: libfuse's node table is the same for every caller, and the daemon's own
    // pid namespace sees every entry (lxcfs-ts hides some only from containers).
    in->pid = (uint32_t) getpid();
    memcpy(req + sizeof(*in), rec_name(rc, r), r->name_len);
    req[sizeof(*in) + r->name_len] = '\0';
    struct fuse_entry_out entry;
    memset(&entry, 0, sizeof(entry));
    size_t got = 0;
    int err = inject(rc, req, sizeof(*in) + r->name_len + 1, &entry, sizeof(entry), &got);
    pthread_mutex_lock(&rc->lock);
    rc->lookups_injected++;
    pthread_mutex_unlock(&rc->lock);
    if (err == 0 && (got < sizeof(entry) || entry.nodeid == 0)) err = -ENOENT;
    if (err != 0) {
      pthread_mutex_unlock(&rc->inject_lock);
      return err;
    }
    pthread_mutex_lock(&rc->lock);
    rc->llid[i] = entry.nodeid;
    pthread_mutex_unlock(&rc->lock);
    parent_llid = entry.nodeid;
  }
  pthread_mutex_unlock(&rc->inject_lock);
  return (int64_t) parent_llid;
}

// The session's handle for a handle the kernel holds. A handle of an earlier daemon is opened again in
// this session (OPEN or OPENDIR for the request's node, as the request's caller) and mapped. 1 when
// *llfh is set, 0 when there is no session handle for it (and none was made: stale), or -errno.
static int session_handle (resume_chan_t *rc, const struct fuse_in_header *kin, uint64_t session_nodeid, uint64_t kfh, int is_dir, int reopen, int take, uint64_t *llfh) {
  pthread_mutex_lock(&rc->lock);
  int found = fh_get(rc, kfh, take, llfh);
  pthread_mutex_unlock(&rc->lock);
  if (found || !reopen) return found;

  pthread_mutex_lock(&rc->inject_lock);
  pthread_mutex_lock(&rc->lock);
  found = fh_get(rc, kfh, 0, llfh); // another thread reopened it meanwhile
  pthread_mutex_unlock(&rc->lock);
  if (found) {
    pthread_mutex_unlock(&rc->inject_lock);
    return 1;
  }
  char req[sizeof(struct fuse_in_header) + sizeof(struct fuse_open_in)];
  struct fuse_in_header *in = (struct fuse_in_header *) req;
  memset(req, 0, sizeof(req));
  in->opcode = is_dir ? FUSE_OPENDIR : FUSE_OPEN;
  in->nodeid = session_nodeid;
  in->uid = kin->uid;
  in->gid = kin->gid;
  in->pid = kin->pid;
  struct fuse_open_in *open_in = (struct fuse_open_in *) (req + sizeof(*in));
  open_in->flags = kin->opcode == FUSE_WRITE ? O_WRONLY : O_RDONLY;
  struct fuse_open_out open_out;
  memset(&open_out, 0, sizeof(open_out));
  size_t got = 0;
  int err = inject(rc, req, sizeof(req), &open_out, sizeof(open_out), &got);
  if (err == 0 && got < sizeof(open_out)) err = -EIO;
  if (err == 0) {
    pthread_mutex_lock(&rc->lock);
    err = fh_put(rc, kfh, open_out.fh);
    rc->reopened++;
    pthread_mutex_unlock(&rc->lock);
    *llfh = open_out.fh;
  }
  pthread_mutex_unlock(&rc->inject_lock);
  return err == 0 ? 1 : err;
}

// Asks the kernel to queue again the requests a previous daemon read and never answered
// (FUSE_NOTIFY_RESEND); on a new connection, before anything was read, this only tells whether the kernel
// can (Linux 6.9+; EINVAL before), which decides whether a restart can be seamless. A resumed channel then
// plays the recorded INIT to the session (its reply is dropped). Runs once, before the first request is read.
static int start_once (resume_chan_t *rc) {
  pthread_mutex_lock(&rc->inject_lock);
  int err = 0;
  if (!atomic_load(&rc->started)) {
    struct fuse_out_header out = { .len = sizeof(out), .error = FUSE_NOTIFY_RESEND, .unique = 0 };
    struct iovec iov = { .iov_base = &out, .iov_len = sizeof(out) };
    int r = write_iov(rc, &iov, 1);
    pthread_mutex_lock(&rc->lock);
    rc->resend = r == 0 ? 0 : -r;
    pthread_mutex_unlock(&rc->lock);
    // (With no INIT recorded, the previous daemon died before reading it: it is still queued, or back in
    // the queue after the resend, and reaches the session as the kernel's.)
    uint32_t len = __atomic_load_n(&rc->hdr->init_len, __ATOMIC_ACQUIRE);
    if (rc->resumed && len > 0) {
      char req[RESUME_INIT_MAX];
      memcpy(req, rc->hdr->init, len);
      err = inject(rc, req, len, NULL, 0, NULL);
    }
    if (err == 0) atomic_store(&rc->started, 1);
  }
  pthread_mutex_unlock(&rc->inject_lock);
  return err;
}

// ---- requests from the kernel ----

enum { FORWARD, HANDLED };

static int libfuse_handles (uint32_t opcode) {
  // fuse_ll_ops of libfuse 2.9.9: 1-43 except 7 and 19.
  return opcode >= FUSE_LOOKUP && opcode <= FUSE_FALLOCATE && opcode != 7 && opcode != 19;
}

// The name a request creates or looks up, NUL-terminated within the body after skip bytes.
static int request_name (const char *body, size_t blen, size_t skip, const char **name, uint32_t *len) {
  if (blen <= skip) return 0;
  const char *s = body + skip;
  const char *end = memchr(s, '\0', blen - skip);
  if (end == NULL) return 0;
  *name = s;
  *len = (uint32_t) (end - s);
  return 1;
}

// Translates one request in place (kernel ids and handles to the session's). FORWARD: hand it to the
// session; HANDLED: answered here or dropped.
static int translate_request (resume_chan_t *rc, char *buf, size_t n) {
  struct fuse_in_header *in = (struct fuse_in_header *) buf;
  char *body = buf + sizeof(*in);
  size_t blen = n - sizeof(*in);
  uint32_t op = in->opcode;
  if (in->len != n) {
    reply_direct(rc, in->unique, -EIO);
    return HANDLED;
  }
  switch (op) {
    case FUSE_INIT:
      // (A resumed channel sees one only when the daemon before it died before reading it.)
      if (__atomic_load_n(&rc->hdr->init_len, __ATOMIC_ACQUIRE) == 0 && n <= RESUME_INIT_MAX) {
        memcpy(rc->hdr->init, buf, n);
        __atomic_store_n(&rc->hdr->init_len, (uint32_t) n, __ATOMIC_RELEASE);
      }
      break;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
      // The session keeps every node (its ids stay valid for the kernel ids mapped to them).
      pthread_mutex_lock(&rc->lock);
      rc->forgets_dropped++;
      pthread_mutex_unlock(&rc->lock);
      return HANDLED;
    case FUSE_NOTIFY_REPLY: // answers to retrieve notifications, which nothing here sends
      return HANDLED;
    case FUSE_INTERRUPT:
    case FUSE_DESTROY:
      return FORWARD; // no node, no handle; an interrupt may get no reply
    default:
      if (!libfuse_handles(op)) {
        reply_direct(rc, in->unique, -ENOSYS); // what libfuse answers; its node may be unknown here
        return HANDLED;
      }
  }

  pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    reply_direct(rc, in->unique, -ENOMEM);
    return HANDLED;
  }
  p->unique = in->unique;
  p->opcode = op;
  p->kid = in->nodeid;

  int64_t err = 0;
  if (in->nodeid != 0) {
    int64_t id = session_node(rc, in->nodeid);
    if (id < 0) err = id;
    else in->nodeid = p->node = (uint64_t) id;
  }

  // The name of a new entry (its id is made when the reply comes).
  const char *name = NULL;
  uint32_t name_len = 0;
  size_t skip = SIZE_MAX;
  if (op == FUSE_LOOKUP || op == FUSE_SYMLINK) skip = 0;
  else if (op == FUSE_MKNOD) skip = sizeof(struct fuse_mknod_in);
  else if (op == FUSE_MKDIR) skip = sizeof(struct fuse_mkdir_in);
  else if (op == FUSE_LINK) skip = sizeof(struct fuse_link_in);
  else if (op == FUSE_CREATE) skip = sizeof(struct fuse_create_in);
  if (err == 0 && skip != SIZE_MAX) {
    if (!request_name(body, blen, skip, &name, &name_len)) err = -EIO;
    else if ((p->name = malloc(name_len + 1)) == NULL) err = -ENOMEM;
    else {
      memcpy(p->name, name, name_len);
      p->name[name_len] = '\0';
      p->name_len = name_len;
    }
  }

  // A second node in the body.
  if (err == 0 && (op == FUSE_RENAME || op == FUSE_LINK)) {
    uint64_t *other = NULL;
    if (op == FUSE_RENAME && blen >= sizeof(struct fuse_rename_in)) other = &((struct fuse_rename_in *) body)->newdir;
    if (op == FUSE_LINK && blen >= sizeof(struct fuse_link_in)) other = &((struct fuse_link_in *) body)->oldnodeid;
    if (other == NULL) err = -EIO;
    else {
      int64_t id = session_node(rc, *other);
      if (id < 0) err = id;
      else *other = (uint64_t) id;
    }
  }

  // Handles.
  if (err == 0) {
    uint64_t *fh = NULL;
    int is_dir = 0;
    int reopen = 1;
    int take = 0;
    int stale_ok = 0; // a stale handle is answered here with 0
    switch (op) {
      case FUSE_GETATTR:
        if (blen >= sizeof(struct fuse_getattr_in) && (((struct fuse_getattr_in *) body)->getattr_flags & FUSE_GETATTR_FH)) {
          fh = &((struct fuse_getattr_in *) body)->fh;
          reopen = 0;
        }
        break;
      case FUSE_SETATTR:
        if (blen >= sizeof(struct fuse_setattr_in) && (((struct fuse_setattr_in *) body)->valid & FATTR_FH)) {
          fh = &((struct fuse_setattr_in *) body)->fh;
          reopen = 0;
        }
        break;
      case FUSE_RELEASE:
      case FUSE_RELEASEDIR:
        take = 1;
        /* fall through */
      case FUSE_FLUSH:
      case FUSE_FSYNC:
      case FUSE_FSYNCDIR:
        reopen = 0;
        stale_ok = 1;
        /* fall through */
      case FUSE_READ:
      case FUSE_WRITE:
      case FUSE_READDIR:
      case FUSE_GETLK:
      case FUSE_SETLK:
      case FUSE_SETLKW:
      case FUSE_IOCTL:
      case FUSE_POLL:
      case FUSE_FALLOCATE:
        if (blen < sizeof(uint64_t)) err = -EIO;
        else fh = (uint64_t *) body; // every one of these bodies starts with the handle
        is_dir = op == FUSE_READDIR || op == FUSE_RELEASEDIR || op == FUSE_FSYNCDIR;
        break;
    }
    if (fh != NULL) {
      uint64_t llfh = 0;
      int r = session_handle(rc, in, in->nodeid, *fh, is_dir, reopen, take, &llfh);
      if (r < 0) err = r;
      else if (r == 1) *fh = llfh;
      else if (op == FUSE_GETATTR) ((struct fuse_getattr_in *) body)->getattr_flags &= ~FUSE_GETATTR_FH; // by path then
      else if (op == FUSE_SETATTR) ((struct fuse_setattr_in *) body)->valid &= ~FATTR_FH;
      else if (stale_ok) {
        pthread_mutex_lock(&rc->lock);
        rc->stale_answered++;
        pthread_mutex_unlock(&rc->lock);
        pending_free(p);
        reply_direct(rc, in->unique, 0);
        return HANDLED;
      }
    }
  }

  if (err != 0) {
    pending_free(p);
    reply_direct(rc, in->unique, (int) err);
    return HANDLED;
  }
  pthread_mutex_lock(&rc->lock);
  int added = pending_add(rc, p);
  pthread_mutex_unlock(&rc->lock);
  if (added != 0) {
    pending_free(p);
    reply_direct(rc, in->unique, -EIO);
    return HANDLED;
  }
  return FORWARD;
}

static void park_forever (resume_chan_t *rc) {
  for (;;) sem_wait(&rc->park_sem); // a cancellation point: libfuse may still cancel the thread
}

int resume_chan_receive (resume_chan_t *rc, char *buf, size_t size) {
  for (;;) {
    if (atomic_load(&rc->parked)) park_forever(rc);
    if (!atomic_load(&rc->started)) {
      int r = resume_chan_start(rc);
      if (r != 0) {
        fprintf(stderr, "lxcfs-ts: the session refused the recorded INIT (%s): cannot resume the connection\n", strerror(-r));
        return -EPROTO;
      }
    }
    ssize_t n = read(rc->fd, buf, size);
    int err = errno;
    if (rc->session.exited(rc->session.ctx)) return 0;
    if (n < 0) {
      if (err == ENOENT || err == EINTR) {
        if (err == EINTR) return -EINTR;
        continue; // the request was interrupted before we got it
      }
      if (err == EAGAIN) { // someone made the shared descriptor non-blocking
        struct pollfd pfd = { .fd = rc->fd, .events = POLLIN };
        poll(&pfd, 1, -1);
        continue;
      }
      if (err == ENODEV) { // unmounted: the connection is gone
        rc->session.exit(rc->session.ctx);
        return 0;
      }
      fprintf(stderr, "lxcfs-ts: reading the FUSE device: %s\n", strerror(err));
      return -err;
    }
    if (n == 0) {
      rc->session.exit(rc->session.ctx);
      return 0;
    }
    if ((size_t) n < sizeof(struct fuse_in_header)) {
      fprintf(stderr, "lxcfs-ts: short read on the FUSE device\n");
      return -EIO;
    }
    // From here the request is ours: it must be answered, so no cancellation until it is handed on.
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    int action = translate_request(rc, buf, (size_t) n);
    pthread_setcancelstate(old, NULL);
    if (action == FORWARD) return (int) n;
  }
}

// ---- replies from the session ----

static void copy_payload (const struct iovec *iov, size_t count, char *dst, size_t cap, size_t *len) {
  size_t n = 0;
  for (size_t i = 1; i < count; i++) {
    size_t take = iov[i].iov_len;
    if (take > cap - n) take = cap - n;
    if (take > 0) memcpy(dst + n, iov[i].iov_base, take);
    n += take;
  }
  *len = n;
}

int resume_chan_send (resume_chan_t *rc, const struct iovec *iov, size_t count) {
  if (iov == NULL || count == 0 || iov[0].iov_len < sizeof(struct fuse_out_header)) return 0; // fuse_reply_none
  const struct fuse_out_header *out = (const struct fuse_out_header *) iov[0].iov_base;
  if (out->unique == 0) return write_iov(rc, iov, (int) count); // a notification

  pthread_mutex_lock(&rc->lock);
  pending_t *p = pending_take(rc, out->unique);
  pthread_mutex_unlock(&rc->lock);

  if (p != NULL && p->injected) {
    p->error = out->error;
    p->captured = 1;
    if (p->out != NULL) copy_payload(iov, count, p->out, p->cap, &p->out_len);
    return 0; // the kernel never sent this request
  }
  if (p == NULL || out->error != 0) {
    pending_free(p);
    return write_iov(rc, iov, (int) count);
  }

  int entry = p->opcode == FUSE_LOOKUP || p->opcode == FUSE_MKNOD || p->opcode == FUSE_MKDIR || p->opcode == FUSE_SYMLINK || p->opcode == FUSE_LINK || p->opcode == FUSE_CREATE;
  int open = p->opcode == FUSE_OPEN || p->opcode == FUSE_OPENDIR || p->opcode == FUSE_CREATE;
  int attr = p->opcode == FUSE_GETATTR || p->opcode == FUSE_SETATTR;
  if (!entry && !open && !attr) {
    pending_free(p);
    return write_iov(rc, iov, (int) count);
  }

  // Small replies (an entry, an open, attributes): rewrite a copy. libfuse reports its node id as the
  // inode number (st_ino) unless use_ino: that is made the kernel id too, so it stays the same across
  // daemons.
  struct {
    struct fuse_out_header out;
    char payload[sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out)];
  } msg;
  size_t len = 0;
  msg.out = *out;
  copy_payload(iov, count, msg.payload, sizeof(msg.payload), &len);
  size_t total = 0;
  for (size_t i = 1; i < count; i++) total += iov[i].iov_len;
  int err = 0;
  uint64_t kfh = 0;
  if (total != len) err = -EIO; // larger than any entry or open reply
  struct fuse_entry_out *e = (struct fuse_entry_out *) msg.payload;
  if (err == 0 && entry) {
    if (len < sizeof(*e)) err = -EIO;
    else if (e->nodeid != 0) { // 0: a negative entry, kept as it is
      pthread_mutex_lock(&rc->lock);
      uint64_t kid = node_intern(rc, p->kid, p->name, p->name_len);
      if (kid != 0) rc->llid[kid - 2] = e->nodeid;
      pthread_mutex_unlock(&rc->lock);
      if (kid == 0) {
        fprintf(stderr, "lxcfs-ts: no room for another path in the FUSE state (%u paths)\n", RESUME_NODE_CAPACITY);
        err = -ENOSPC; // the session keeps its node; the kernel never learns of it
      } else {
        if (e->attr.ino == e->nodeid) e->attr.ino = kid;
        e->nodeid = kid;
      }
    }
  }
  if (err == 0 && attr) {
    struct fuse_attr_out *a = (struct fuse_attr_out *) msg.payload;
    if (len < sizeof(*a)) err = -EIO;
    else if (a->attr.ino == p->node) a->attr.ino = p->kid;
  }
  if (err == 0 && open) {
    struct fuse_open_out *o = (struct fuse_open_out *) (msg.payload + (entry ? sizeof(*e) : 0));
    if (len < (size_t) ((char *) (o + 1) - msg.payload)) err = -EIO;
    else {
      pthread_mutex_lock(&rc->lock);
      kfh = fh_new(rc);
      err = fh_put(rc, kfh, o->fh);
      pthread_mutex_unlock(&rc->lock);
      o->fh = kfh;
    }
  }
  int r;
  if (err != 0) {
    // The session's handle, if any, stays open on its side; the kernel gets the error.
    reply_direct(rc, out->unique, err);
    r = 0;
  } else {
    msg.out.len = (uint32_t) (sizeof(msg.out) + len);
    struct iovec one = { .iov_base = &msg, .iov_len = msg.out.len };
    r = write_iov(rc, &one, 1);
    if (r == -ENOENT && open) { // the opener was interrupted: libfuse releases its handle itself
      pthread_mutex_lock(&rc->lock);
      uint64_t dropped;
      fh_get(rc, kfh, 1, &dropped);
      pthread_mutex_unlock(&rc->lock);
    }
  }
  pending_free(p);
  return r;
}

// ---- life cycle ----

int resume_chan_new (int fuse_fd, int state_fd, const char *mountpoint, resume_chan_t **out) {
  *out = NULL;
  resume_chan_t *rc = calloc(1, sizeof(*rc));
  if (rc == NULL) {
    if (state_fd >= 0) close(state_fd);
    return -ENOMEM;
  }
  rc->fd = fuse_fd;
  rc->state_fd = -1;
  int r;
  uint32_t count = 0;
  if (state_fd < 0) {
    r = state_create(mountpoint, &rc->hdr, &rc->map_size);
    if (r < 0) {
      free(rc);
      return r;
    }
    rc->state_fd = r;
  } else {
    rc->state_fd = state_fd;
    rc->resumed = 1;
    r = state_map(state_fd, 1, &rc->hdr, &rc->map_size);
    if (r == 0) r = state_check(rc->hdr, rc->map_size, &count);
    if (r < 0) {
      if (rc->hdr != NULL) munmap(rc->hdr, rc->map_size);
      close(state_fd);
      free(rc);
      return r;
    }
  }
  state_header_t *h = rc->hdr;
  rc->recs = (node_rec_t *) ((char *) h + h->nodes_offset);
  rc->names = (char *) h + h->names_offset;
  uint32_t slots = 1;
  while (slots < h->node_capacity * 2) slots <<= 1;
  rc->index = calloc(slots, sizeof(uint32_t));
  rc->index_mask = slots - 1;
  rc->llid = calloc(h->node_capacity, sizeof(uint64_t));
  rc->fh_nbuckets = 256;
  rc->fh_buckets = calloc(rc->fh_nbuckets, sizeof(fh_entry_t *));
  if (rc->index == NULL || rc->llid == NULL || rc->fh_buckets == NULL) {
    free(rc->index);
    free(rc->llid);
    free(rc->fh_buckets);
    munmap(h, rc->map_size);
    close(rc->state_fd);
    free(rc);
    return -ENOMEM;
  }
  if (rc->resumed) {
    // A record past the published count may be half written by a daemon that died: names after the last
    // published one are free again.
    uint64_t used = 0;
    for (uint32_t i = 0; i < count; i++) {
      index_insert(rc, i);
      uint64_t end = rc->recs[i].name_off + rc->recs[i].name_len;
      if (end > used) used = end;
    }
    h->names_used = used;
    h->generation++; // handles made from now on never equal one an earlier daemon gave out
  }
  pthread_mutex_init(&rc->lock, NULL);
  pthread_mutex_init(&rc->inject_lock, NULL);
  sem_init(&rc->park_sem, 0, 0);
  rc->resend = -1;
  atomic_init(&rc->started, 0);
  atomic_init(&rc->parked, 0);
  *out = rc;
  return 0;
}

void resume_chan_set_session (resume_chan_t *rc, const resume_session_t *session) {
  rc->session = *session;
}

int resume_chan_start (resume_chan_t *rc) {
  if (atomic_load(&rc->started)) return 0;
  int old;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  int r = start_once(rc);
  pthread_setcancelstate(old, NULL);
  return r;
}

void resume_chan_free (resume_chan_t *rc) {
  if (rc == NULL) return;
  for (size_t i = 0; i < rc->fh_nbuckets; i++) {
    fh_entry_t *e = rc->fh_buckets[i];
    while (e != NULL) {
      fh_entry_t *next = e->next;
      free(e);
      e = next;
    }
  }
  for (size_t i = 0; i < PENDING_BUCKETS; i++) {
    pending_t *p = rc->pending[i];
    while (p != NULL) {
      pending_t *next = p->next;
      pending_free(p);
      p = next;
    }
  }
  free(rc->fh_buckets);
  free(rc->index);
  free(rc->llid);
  munmap(rc->hdr, rc->map_size);
  if (rc->state_fd >= 0) close(rc->state_fd);
  pthread_mutex_destroy(&rc->lock);
  pthread_mutex_destroy(&rc->inject_lock);
  sem_destroy(&rc->park_sem);
  free(rc);
}

int resume_chan_fuse_fd (const resume_chan_t *rc) {
  return rc->fd;
}

int resume_chan_state_fd (const resume_chan_t *rc) {
  return rc->state_fd;
}

int resume_chan_set_device (resume_chan_t *rc, const char *device) {
  if (device == NULL || strlen(device) >= sizeof(rc->hdr->device)) return -EINVAL;
  pthread_mutex_lock(&rc->lock);
  memset(rc->hdr->device, 0, sizeof(rc->hdr->device));
  memcpy(rc->hdr->device, device, strlen(device));
  pthread_mutex_unlock(&rc->lock);
  return 0;
}

void resume_chan_park (resume_chan_t *rc) {
  atomic_store(&rc->parked, 1);
}

void resume_chan_stats (resume_chan_t *rc, resume_chan_stats_t *out) {
  pthread_mutex_lock(&rc->lock);
  out->resumed = rc->resumed;
  out->generation = rc->hdr->generation;
  out->nodes = node_count(rc);
  out->handles = (uint32_t) rc->fh_count;
  out->lookups_injected = rc->lookups_injected;
  out->reopened = rc->reopened;
  out->stale_answered = rc->stale_answered;
  out->forgets_dropped = rc->forgets_dropped;
  out->resend = rc->resend;
  out->in_flight = rc->in_flight;
  out->parked = atomic_load(&rc->parked);
  pthread_mutex_unlock(&rc->lock);
}
