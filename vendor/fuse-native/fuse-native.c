#define FUSE_USE_VERSION 29

#include <uv.h>
#include <node_api.h>
#include <napi-macros.h>

#include <stddef.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <assert.h>

#include <fuse.h>
#include <fuse_opt.h>
#include <fuse_common.h>
#include <fuse_lowlevel.h>

#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "render-cache.h"
#include "locals-pool.h"
#include "sd-notify.h"
#include <sys/file.h>
#include "resume-chan.h"
#include "fair-queue.h"

static int IS_ARRAY_BUFFER_DETACH_SUPPORTED = 0;

napi_status napi_detach_arraybuffer(napi_env env, napi_value buf);

#define FUSE_NATIVE_CALLBACK(fn, blk)\
  napi_env env = ft->env;\
  napi_handle_scope scope;\
  napi_open_handle_scope(env, &scope);\
  napi_value ctx;\
  napi_get_reference_value(env, ft->ctx, &ctx);\
  napi_value callback;\
  napi_get_reference_value(env, fn, &callback);\
  blk\
  napi_close_handle_scope(env, scope);

#define FUSE_NATIVE_HANDLER(name, blk)\
  fuse_thread_locals_t *l = get_thread_locals();\
  if (l == NULL) return -ENOMEM;\
  capture_caller(l);\
  l->op = op_##name;\
  l->op_fn = fuse_native_dispatch_##name;\
  blk\
  return hand_to_js(l);

#define FUSE_METHOD(name, callbackArgs, signalArgs, signature, callBlk, callbackBlk, signalBlk)\
  static void fuse_native_dispatch_##name (uv_async_t* handle, fuse_thread_locals_t* l, fuse_thread_t* ft) {\
    uint32_t op = op_##name;\
    FUSE_NATIVE_CALLBACK(ft->handlers[op], {\
      napi_value argv[callbackArgs + 6];\
      argv[0] = locals_handle(env, l);\
      napi_create_uint32(env, l->op, &(argv[1]));\
      callbackBlk\
      FUSE_NATIVE_CALLER_ARGV(callbackArgs + 2)\
      NAPI_MAKE_CALLBACK(env, NULL, ctx, callback, callbackArgs + 6, argv, NULL)\
    })\
  }\
  NAPI_METHOD(fuse_native_signal_##name) {\
    NAPI_ARGV(signalArgs + 2)\
    fuse_thread_locals_t *l = awaiting_locals(env, argv[0]);\
    if (l == NULL) return NULL;\
    NAPI_ARGV_INT32(res, 1);\
    signalBlk\
    answer(l, res);\
    return NULL;\
  }\
  static int fuse_native_##name signature {\
    FUSE_NATIVE_HANDLER(name, callBlk)\
  }

// lxcfs-ts: the caller (pid = calling thread id, uid, gid, and the inode of its pid namespace, looked up for
// the fair hand-off: PATCHES.md 20) goes after each op's own arguments, so the upstream argv indices are
// unchanged; index.js pops them off.
#define FUSE_NATIVE_CALLER_ARGV(pos)\
  napi_create_int32(env, l->caller_pid, &(argv[pos]));\
  napi_create_uint32(env, l->caller_uid, &(argv[pos + 1]));\
  napi_create_uint32(env, l->caller_gid, &(argv[pos + 2]));\
  napi_create_double(env, (double) l->caller_ns, &(argv[pos + 3]));

#define FUSE_METHOD_VOID(name, callbackArgs, signalArgs, signature, callBlk, callbackBlk)\
  FUSE_METHOD(name, callbackArgs, signalArgs, signature, callBlk, callbackBlk, {})

#define FUSE_UINT64_TO_INTS_ARGV(n, pos)\
  uint32_t low##pos = n % 4294967296;\
  uint32_t high##pos = (n - low##pos) / 4294967296;\
  napi_create_uint32(env, low##pos, &(argv[pos]));\
  napi_create_uint32(env, high##pos, &(argv[pos + 1]));


// Opcodes

static const uint32_t op_init = 0;
static const uint32_t op_error = 1;
static const uint32_t op_access = 2;
static const uint32_t op_statfs = 3;
static const uint32_t op_fgetattr = 4;
static const uint32_t op_getattr = 5;
static const uint32_t op_flush = 6;
static const uint32_t op_fsync = 7;
static const uint32_t op_fsyncdir = 8;
static const uint32_t op_readdir = 9;
static const uint32_t op_truncate = 10;
static const uint32_t op_ftruncate = 11;
static const uint32_t op_utimens = 12;
static const uint32_t op_readlink = 13;
static const uint32_t op_chown = 14;
static const uint32_t op_chmod = 15;
static const uint32_t op_mknod = 16;
static const uint32_t op_setxattr = 17;
static const uint32_t op_getxattr = 18;
static const uint32_t op_listxattr = 19;
static const uint32_t op_removexattr = 20;
static const uint32_t op_open = 21;
static const uint32_t op_opendir = 22;
static const uint32_t op_read = 23;
static const uint32_t op_write = 24;
static const uint32_t op_release = 25;
static const uint32_t op_releasedir = 26;
static const uint32_t op_create = 27;
static const uint32_t op_unlink = 28;
static const uint32_t op_rename = 29;
static const uint32_t op_link = 30;
static const uint32_t op_symlink = 31;
static const uint32_t op_mkdir = 32;
static const uint32_t op_rmdir = 33;

static const uint32_t mnt_detach = MNT_DETACH;
static const uint32_t lock_sh = LOCK_SH;
static const uint32_t lock_ex = LOCK_EX;
static const uint32_t lock_nb = LOCK_NB;
static const uint32_t lock_un = LOCK_UN;
static const uint32_t render_cache_max = RENDER_CACHE_MAX;

// Data structures

// lxcfs-ts (PATCHES.md 15): both structs are allocated here, not in JS buffers, and stay allocated until no
// thread can touch them: the FUSE thread has been joined and every worker thread has given its locals back
// (locals_pool_idle). JS reaches them through napi externals whose finalizers only drop a reference.

typedef struct fuse_thread_locals_s fuse_thread_locals_t;

typedef struct {
  napi_env env;
  pthread_t thread;
  napi_ref ctx;

  // Operation handlers
  napi_ref handlers[35];

  struct fuse *fuse;
  struct fuse_chan *ch;
  char mnt[1024];
  char mntopts[1024];

  // lxcfs-ts (PATCHES.md 19): the resumable channel, when the mount uses one (else NULL), and whether this
  // mount took over a stored connection instead of mounting.
  resume_chan_t *rc;
  int resumed;
  int resume_error;      // FUSE thread: resuming failed (-errno); JS hears of it from ft_async
  int resume_reported;   // main thread
  atomic_int handed_over; // the process hands the connection over: pending requests are left to the next daemon

  // Wakes the main thread when a worker needs new locals, and when the FUSE thread has finished.
  uv_async_t async;

  // lxcfs-ts (PATCHES.md 20): requests for JS wait here, served fairly between pid namespaces; the FUSE
  // thread that queues one wakes the main thread through dispatch_async.
  fair_queue_t fq;
  uv_async_t dispatch_async;
  uv_mutex_t mut;    // one request for new locals at a time
  uv_sem_t sem;      // posted when they are ready
  atomic_int locals_wanted;
  fuse_thread_locals_t *new_locals;
  double locals_made; // main thread: locals made for new workers by serve_locals_wanted (threadStats().made)

  // lxcfs-ts: thread locals of exited workers, reused by new ones (PATCHES.md 2); idle once the FUSE thread
  // has finished and every worker gave its locals back.
  locals_pool_t pool;

  // Main thread only:
  fuse_thread_locals_t *all_locals;
  int refs;       // 1 for the JS handle (dropped by its finalizer), 1 until teardown has closed the handles
  int unmounted;  // fuse_native_unmount was called
  int torn_down;
  int env_gone;   // Node's environment is being torn down: no N-API calls any more, requests get EIO
} fuse_thread_t;

struct fuse_thread_locals_s {
  locals_pool_item_t pool_item;
  fair_queue_item_t queue_item; // lxcfs-ts: while the request waits for the main thread

  // Opcode
  uint32_t op;
  void *op_fn;

  // Payloads
  const char *path;
  const char *dest;
  char *linkname;
  struct fuse_file_info *info;
  const void *buf;
  off_t offset;
  size_t len;
  mode_t mode;
  dev_t dev;
  uid_t uid;
  gid_t gid;
  size_t atime;
  size_t mtime;
  int32_t res;

  // Extended attributes
  const char *name;
  const char *value;
  char *list;
  size_t size;
  uint32_t position;
  int flags;

  // Stat + Statfs
  struct stat *stat;
  struct statvfs *statvfs;

  // Readdir
  fuse_fill_dir_t readdir_filler;

  // Internal bookkeeping
  fuse_thread_t *fuse;
  uv_sem_t sem;
  uv_async_t async;
  // lxcfs-ts: 1 while a request waits for its answer (set by the FUSE thread, cleared by whoever answers)
  atomic_int pending;

  // lxcfs-ts: who made the current request, read on the FUSE thread before the hand-off
  int32_t caller_pid;
  uint32_t caller_uid;
  uint32_t caller_gid;
  uint64_t caller_ns; // its pid namespace's inode (0: unknown), set by hand_to_js
  // lxcfs-ts: the caller's pid namespace (inode) when its open may be cached, else 0 (render cache)
  uint64_t cache_ns;
  // lxcfs-ts: during a read at offset 0 that re-renders (PATCHES.md 12), the open file being refreshed
  void *rewind_file;

  // lxcfs-ts, main thread only:
  napi_ref self;  // the napi external handed to JS with each request (made at the first one)
  int refs;       // 1 while its fuse_thread_t lists it (until its async handle is closed), 1 for the external
  fuse_thread_locals_t *next_all;
};

static pthread_key_t thread_locals_key;
static fuse_thread_locals_t* get_thread_locals (void);

static void capture_caller (fuse_thread_locals_t *l) {
  struct fuse_context *fc = fuse_get_context();
  l->caller_pid = fc != NULL ? (int32_t) fc->pid : 0;
  l->caller_uid = fc != NULL ? (uint32_t) fc->uid : 0;
  l->caller_gid = fc != NULL ? (uint32_t) fc->gid : 0;
  l->cache_ns = 0; // set again by the render cache's lookup, when this request makes one
}

static uint64_t monotonic_ns (void);
static void serve_locals_wanted (fuse_thread_t *ft);
static uint64_t pid_ns_of (int32_t tid, int *fd_out);

// lxcfs-ts (PATCHES.md 20): requests that go before others in the fair hand-off: the lookups and directory
// reads the kernel makes while it holds the directory's lock (without FUSE_PARALLEL_DIROPS, which libfuse 2.9
// cannot ask for, every other lookup in that directory waits for them), and init.
static int urgent_op (uint32_t op) {
  return op == op_getattr || op == op_fgetattr || op == op_access || op == op_readlink || op == op_opendir ||
         op == op_readdir || op == op_releasedir || op == op_statfs || op == op_init;
}

// lxcfs-ts: hands the request in l to the main thread and waits for its answer. FUSE thread. The request
// queues under its caller's pid namespace (PATCHES.md 20): the main thread serves urgent requests first, then
// the namespace that took the least of its time lately.
static int32_t hand_to_js (fuse_thread_locals_t *l) {
  fuse_thread_t *ft = l->fuse;
  // The render cache's lookup for this request may have found the namespace already (else 0 for init and
  // callers already gone: one shared key).
  uint64_t key = l->cache_ns != 0 ? l->cache_ns : pid_ns_of(l->caller_pid, NULL);
  l->caller_ns = key;
  atomic_store_explicit(&l->pending, 1, memory_order_release);
  if (fair_queue_push(&(ft->fq), &(l->queue_item), key, urgent_op(l->op), monotonic_ns()) == 0) {
    // Closed: Node's environment is going away (ft_env_cleanup). If nobody answered us meanwhile, EIO; if
    // the cleanup did (it saw pending), take its post first.
    int expected = 1;
    if (atomic_compare_exchange_strong(&l->pending, &expected, 0)) return -EIO;
    uv_sem_wait(&(l->sem));
    return l->res;
  }
  uv_async_send(&(ft->dispatch_async));
  uv_sem_wait(&(l->sem));
  return l->res;
}

// Main thread: releases the FUSE thread waiting on l with res. The caller saw l->pending set.
static void answer (fuse_thread_locals_t *l, int32_t res) {
  l->res = res;
  atomic_store_explicit(&l->pending, 0, memory_order_relaxed);
  uv_sem_post(&(l->sem)); // orders the writes above before the FUSE thread's reads
}

// The locals behind a signal's first argument, or NULL when no request waits on them: a handler that
// answers twice (or after its request got EIO at teardown) is ignored instead of answering a later request.
static fuse_thread_locals_t *awaiting_locals (napi_env env, napi_value handle) {
  void *data = NULL;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "not a fuse-native request handle");
    return NULL;
  }
  fuse_thread_locals_t *l = (fuse_thread_locals_t *) data;
  return atomic_load_explicit(&l->pending, memory_order_acquire) ? l : NULL;
}

static void locals_unref (fuse_thread_locals_t *l) {
  if (--l->refs > 0) return;
  uv_sem_destroy(&(l->sem));
  free(l);
}

static void locals_finalize (napi_env env, void *data, void *hint) {
  locals_unref((fuse_thread_locals_t *) data);
}

// The JS value for l, made at its first request; while JS can reach it, l stays allocated.
static napi_value locals_handle (napi_env env, fuse_thread_locals_t *l) {
  napi_value v = NULL;
  if (l->self == NULL) {
    if (napi_create_external(env, l, locals_finalize, NULL, &v) != napi_ok) return NULL;
    l->refs++;
    napi_create_reference(env, v, 1, &(l->self));
    return v;
  }
  napi_get_reference_value(env, l->self, &v);
  return v;
}

// Helpers

static uint64_t uint32s_to_uint64 (uint32_t **ints) {
  uint64_t low = *((*ints)++);
  uint64_t high = *((*ints)++);
  return high * 4294967296 + low;
}

static void uint32s_to_timespec (struct timespec* ts, uint32_t** ints) {
  uint64_t ms = uint32s_to_uint64(ints);
  ts->tv_sec = ms / 1000;
  ts->tv_nsec = (ms % 1000) * 1000000;
}

static uint64_t timespec_to_uint64 (const struct timespec* ts) {
  uint64_t ms = (ts->tv_sec * 1000) + (ts->tv_nsec / 1000000);
  return ms;
}

static void populate_stat (uint32_t *ints, struct stat* stat) {
  stat->st_mode = *ints++;
  stat->st_uid = *ints++;
  stat->st_gid = *ints++;
  stat->st_size = uint32s_to_uint64(&ints);
  stat->st_dev = *ints++;
  stat->st_nlink = *ints++;
  stat->st_ino = *ints++;
  stat->st_rdev = *ints++;
  stat->st_blksize = *ints++;
  stat->st_blocks = uint32s_to_uint64(&ints);
#ifdef __APPLE__
  uint32s_to_timespec(&stat->st_atimespec, &ints);
  uint32s_to_timespec(&stat->st_mtimespec, &ints);
  uint32s_to_timespec(&stat->st_ctimespec, &ints);
#else
  uint32s_to_timespec(&stat->st_atim, &ints);
  uint32s_to_timespec(&stat->st_mtim, &ints);
  uint32s_to_timespec(&stat->st_ctim, &ints);
#endif
}

static void populate_statvfs (uint32_t *ints, struct statvfs* statvfs) {
  statvfs->f_bsize = *ints++;
  statvfs->f_frsize = *ints++;
  statvfs->f_blocks = *ints++;
  statvfs->f_bfree = *ints++;
  statvfs->f_bavail = *ints++;
  statvfs->f_files = *ints++;
  statvfs->f_ffree = *ints++;
  statvfs->f_favail = *ints++;
  statvfs->f_fsid = *ints++;
  statvfs->f_flag = *ints++;
  statvfs->f_namemax = *ints++;
}

// Methods

FUSE_METHOD(statfs, 1, 1, (const char * path, struct statvfs *statvfs), {
  l->path = path;
  l->statvfs = statvfs;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_statvfs(ints, l->statvfs);
})

FUSE_METHOD(getattr, 1, 1, (const char *path, struct stat *stat), {
  l->path = path;
  l->stat = stat;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_stat(ints, l->stat);
})

FUSE_METHOD(fgetattr, 2, 1, (const char *path, struct stat *stat, struct fuse_file_info *info), {
  l->path = path;
  l->stat = stat;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[3]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
  }
}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_stat(ints, l->stat);
})

FUSE_METHOD_VOID(access, 2, 0, (const char *path, int mode), {
  l->path = path;
  l->mode = mode;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
})

// lxcfs-ts: content handed over at open is kept natively and served by read/release on the FUSE thread,
// without a hand-off to JS (PATCHES.md 7). Its handle is the address of a native_file_t tagged with bit
// 63, which no user-space pointer has; handles from JS are stored as unsigned 32-bit values, so they never
// have it either (set_js_handle, PATCHES.md 14).
//
// seq_file semantics (PATCHES.md 12), as the kernel's own /proc files and LXCFS behave: the first read at
// offset 0 is answered from the content made at open; every later read at offset 0 (lseek(fd, 0) + read,
// pread(fd, .., 0): how top, vmstat, free -s and htop sample) asks JS to render the file again and
// replaces the content; reads at offset > 0 continue the latest rendering, so a reader going through the
// file in chunks sees one consistent snapshot.
#define NATIVE_CONTENT_TAG (1ULL << 63)

typedef struct {
  pthread_mutex_t lock; // content may be replaced by a rewind while another thread reads the same handle
  int served;           // a read at offset 0 was answered from the current content
  size_t len;
  char *data;
} native_file_t;

static int is_native_content (struct fuse_file_info *info) {
  return info != NULL && (info->fh & NATIVE_CONTENT_TAG) != 0;
}

static native_file_t *native_file_of (struct fuse_file_info *info) {
  return (native_file_t *) (uintptr_t) (info->fh & ~NATIVE_CONTENT_TAG);
}

// Takes ownership of data (malloc'd). NULL when out of memory (data is then freed).
static native_file_t *native_file_new (char *data, size_t len) {
  native_file_t *f = malloc(sizeof(native_file_t));
  if (f == NULL) {
    free(data);
    return NULL;
  }
  pthread_mutex_init(&f->lock, NULL);
  f->served = 0;
  f->len = len;
  f->data = data;
  return f;
}

static void native_file_free (native_file_t *f) {
  pthread_mutex_destroy(&f->lock);
  free(f->data);
  free(f);
}

// Replaces the content with data (malloc'd, owned from now on): the next read at offset 0 serves it.
static void native_file_replace (native_file_t *f, char *data, size_t len) {
  pthread_mutex_lock(&f->lock);
  char *old = f->data;
  f->data = data;
  f->len = len;
  f->served = 0;
  pthread_mutex_unlock(&f->lock);
  free(old);
}

// A copy of len bytes (malloc(0) may return NULL: always allocate at least one byte).
static char *copy_bytes (const char *data, size_t len) {
  char *copy = malloc(len > 0 ? len : 1);
  if (copy != NULL && len > 0) memcpy(copy, data, len);
  return copy;
}

// 1 when this read must render again first: at offset 0, after an earlier read at offset 0.
static int native_file_needs_rewind (native_file_t *f, off_t offset) {
  if (offset != 0) return 0;
  pthread_mutex_lock(&f->lock);
  int served = f->served;
  pthread_mutex_unlock(&f->lock);
  return served;
}

static int native_file_read (native_file_t *f, char *buf, size_t len, off_t offset) {
  if (offset < 0) return -EINVAL;
  pthread_mutex_lock(&f->lock);
  if (offset == 0) f->served = 1;
  size_t n = 0;
  if ((size_t) offset < f->len) {
    n = f->len - (size_t) offset;
    if (n > len) n = len;
    memcpy(buf, f->data + offset, n);
  }
  pthread_mutex_unlock(&f->lock);
  return (int) n;
}

// lxcfs-ts: the render cache (PATCHES.md 11; the cache itself is render-cache.c). Here: who may be cached
// and under which key. Opens for writing or truncating and readers in the daemon's own pid namespace (each
// host process is its own "container") always go to JS.
static uint64_t monotonic_ns (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

// The inode of /proc/<tid>/ns/pid (0 when unreadable). With fd_out, the file stays open there.
static uint64_t pid_ns_of (int32_t tid, int *fd_out) {
  char p[64];
  struct stat st;
  if (tid <= 0) return 0;
  snprintf(p, sizeof(p), "/proc/%d/ns/pid", tid);
  if (fd_out == NULL) return stat(p, &st) == 0 ? (uint64_t) st.st_ino : 0;
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return 0;
  }
  *fd_out = fd;
  return (uint64_t) st.st_ino;
}

// On the FUSE thread, before the hand-off: a copy of the cached rendering of path for the caller's pid
// namespace (malloc'd, *len_out set), or NULL when there is none (an open or rewind then goes to JS).
static char *cached_rendering (fuse_thread_locals_t *l, const char *path, int flags, size_t *len_out) {
  l->cache_ns = 0;
  if (render_cache_ttl_ns() == 0) return NULL;
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) return NULL;
  uint64_t ns = pid_ns_of(l->caller_pid, NULL);
  if (ns == 0 || ns == render_cache_own_ns()) return NULL;
  l->cache_ns = ns;
  return render_cache_lookup(path, ns, monotonic_ns(), len_out);
}

// Answers an open from the render cache when it can (returns 1).
static int open_from_cache (fuse_thread_locals_t *l, const char *path, struct fuse_file_info *info) {
  l->cache_ns = 0;
  if (info == NULL) return 0;
  size_t len = 0;
  char *copy = cached_rendering(l, path, info->flags, &len);
  if (copy == NULL) return 0;
  native_file_t *f = native_file_new(copy, len);
  if (f == NULL) return 0;
  info->fh = ((uint64_t) (uintptr_t) f) | NATIVE_CONTENT_TAG;
  return 1;
}

// On the main thread, when JS answered an open with cacheable content.
static void cache_rendering (fuse_thread_locals_t *l, const char *path, const char *data, size_t len) {
  if (render_cache_ttl_ns() == 0 || l->cache_ns == 0) return;
  int fd = -1;
  // The reader is blocked in this open, so its namespace is still the one looked up on the FUSE thread.
  if (pid_ns_of(l->caller_pid, &fd) != l->cache_ns) {
    if (fd >= 0) close(fd);
    return;
  }
  render_cache_store(path, l->cache_ns, fd, data, len, monotonic_ns());
}

// [entries, hits, misses] as a JS array.
static napi_value render_cache_counters (napi_env env, const render_cache_stats_t *stats) {
  const double counters[3] = { (double) stats->entries, (double) stats->hits, (double) stats->misses };
  napi_value result;
  napi_create_array_with_length(env, 3, &result);
  for (uint32_t i = 0; i < 3; i++) {
    napi_value v;
    napi_create_double(env, counters[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

// renderCache(ttlMs): sets the time to live (0 turns the cache off) and empties the cache.
// Returns [entries, hits, misses] as they were before.
NAPI_METHOD(fuse_native_render_cache) {
  NAPI_ARGV(1)
  NAPI_ARGV_UINT32(ttl_ms, 0)
  struct stat st;
  uint64_t own = stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t) st.st_ino : 0;
  render_cache_stats_t before;
  render_cache_configure((uint64_t) ttl_ms * 1000000ULL, own, &before);
  return render_cache_counters(env, &before);
}

// renderCacheSweep(): drops expired entries now (closing their namespaces' fds); returns how many remain.
NAPI_METHOD(fuse_native_render_cache_sweep) {
  uint32_t left = render_cache_sweep(monotonic_ns());
  NAPI_RETURN_UINT32(left)
}

// renderCacheStats(): [entries, hits, misses]
NAPI_METHOD(fuse_native_render_cache_stats) {
  render_cache_stats_t now;
  render_cache_stats(&now);
  return render_cache_counters(env, &now);
}

// lxcfs-ts (PATCHES.md 7, 14): a file handle from JS (open, create, opendir) is kept only when it is a
// whole number from 1 to 2^32 - 1, stored as that unsigned 32-bit value: handles reach JS as uint32 anyway
// (napi_create_uint32 of fh), and bit 63, the native content tag, is never set. Anything else (0, negative,
// fractional, larger, not a number) leaves fh 0, as no handle.
static void set_js_handle (napi_env env, napi_value v, struct fuse_file_info *info) {
  double fd = 0;
  if (info == NULL || napi_get_value_double(env, v, &fd) != napi_ok) return;
  if (fd >= 1 && fd <= 4294967295.0 && fd == (double) (uint32_t) fd) info->fh = (uint32_t) fd;
}

// The third argument tells JS whether this is an open (false) or a rewind of an open file (true).
FUSE_METHOD(open, 3, 3, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
  l->rewind_file = NULL;
  if (open_from_cache(l, path, info)) return 0;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->flags, &(argv[3]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
  }
  napi_get_boolean(env, l->rewind_file != NULL, &(argv[4]));
}, {
  bool has_content = false;
  if (res == 0 && argc > 3) napi_is_buffer(env, argv[3], &has_content);
  if (has_content) {
    char *data;
    size_t len;
    napi_get_buffer_info(env, argv[3], (void **) &data, &len);
    char *copy = copy_bytes(data, len);
    native_file_t *rewound = (native_file_t *) l->rewind_file;
    if (copy == NULL) {
      res = -ENOMEM;
    } else if (rewound != NULL) {
      native_file_replace(rewound, copy, len);
    } else {
      native_file_t *f = native_file_new(copy, len);
      if (f == NULL) res = -ENOMEM;
      else l->info->fh = ((uint64_t) (uintptr_t) f) | NATIVE_CONTENT_TAG;
    }
    bool cacheable = false;
    if (res == 0 && argc > 4) napi_get_value_bool(env, argv[4], &cacheable);
    if (cacheable) cache_rendering(l, l->path, data, len);
  } else if (res == 0 && l->rewind_file != NULL) {
    res = -EIO; // a rewind must come back with content
  } else if (res == 0) {
    set_js_handle(env, argv[2], l->info);
  }
})

// A read at offset 0 after an earlier one: render the file again (from the render cache, or by handing the
// request to JS as a rewind open), then serve the new content. Runs on the FUSE thread.
static int native_file_rewind (fuse_thread_locals_t *l, const char *path, struct fuse_file_info *info, native_file_t *f) {
  size_t len = 0;
  char *copy = cached_rendering(l, path, O_RDONLY, &len);
  if (copy != NULL) {
    native_file_replace(f, copy, len);
    return 0;
  }
  l->path = path;
  l->info = info;
  l->rewind_file = f;
  l->op = op_open;
  l->op_fn = fuse_native_dispatch_open;
  int32_t res = hand_to_js(l);
  l->rewind_file = NULL;
  return res;
}

FUSE_METHOD(opendir, 3, 1, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[3]));
    napi_create_uint32(env, l->info->flags, &(argv[4]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
    napi_create_uint32(env, 0, &(argv[4]));
  }
}, {
  if (res == 0) set_js_handle(env, argv[2], l->info); // lxcfs-ts: see set_js_handle
})

FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {
  l->path = path;
  l->mode = mode;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
}, {
  if (res == 0) set_js_handle(env, argv[2], l->info); // lxcfs-ts: never the native content tag, see open
})

FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->atime = timespec_to_uint64(&tv[0]);
  l->mtime = timespec_to_uint64(&tv[1]);
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)
})

FUSE_METHOD_VOID(release, 2, 0, (const char *path, struct fuse_file_info *info), {
  if (is_native_content(info)) {
    native_file_free(native_file_of(info));
    return 0;
  }
  l->path = path;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[3]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
  }
})

FUSE_METHOD_VOID(releasedir, 2, 0, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[3]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
  }
})

FUSE_METHOD(read, 6, 2, (const char *path, char *buf, size_t len, off_t offset, struct fuse_file_info *info), {
  if (is_native_content(info)) {
    native_file_t *f = native_file_of(info);
    if (native_file_needs_rewind(f, offset)) {
      int r = native_file_rewind(l, path, info, f);
      if (r < 0) return r;
    }
    return native_file_read(f, buf, len, offset);
  }
  l->path = path;
  l->buf = buf;
  l->len = len;
  l->offset = offset;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->info->fh, &(argv[3]));
  napi_create_external_buffer(env, l->len, (char *) l->buf, NULL, NULL, &(argv[4]));
  napi_create_uint32(env, l->len, &(argv[5]));
  FUSE_UINT64_TO_INTS_ARGV(l->offset, 6)
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[3]) == napi_ok);
})

FUSE_METHOD(write, 6, 2, (const char *path, const char *buf, size_t len, off_t offset, struct fuse_file_info *info), {
  l->path = path;
  l->buf = buf;
  l->len = len;
  l->offset = offset;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->info->fh, &(argv[3]));
  napi_create_external_buffer(env, l->len, (char *) l->buf, NULL, NULL, &(argv[4]));
  napi_create_uint32(env, l->len, &(argv[5]));
  FUSE_UINT64_TO_INTS_ARGV(l->offset, 6)
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[3]) == napi_ok);
})

FUSE_METHOD(readdir, 1, 2, (const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *info), {
  l->buf = buf;
  l->path = path;
  l->offset = offset;
  l->info = info;
  l->readdir_filler = filler;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
}, {
  uint32_t stats_length;
  uint32_t names_length;
  napi_get_array_length(env, argv[3], &stats_length);
  napi_get_array_length(env, argv[2], &names_length);

  napi_value raw_names = argv[2];
  napi_value raw_stats = argv[3];

  if (names_length != stats_length) {
    NAPI_FOR_EACH(raw_names, raw_name) {
      NAPI_UTF8(name, 1024, raw_name)
      int err = l->readdir_filler((char *) l->buf, name, NULL, 0);
      if (err == 1) {
        break;
      }
    }
  } else {
    NAPI_FOR_EACH(raw_names, raw_name) {
      NAPI_UTF8(name, 1024, raw_name)
      napi_value raw_stat;
      napi_get_element(env, raw_stats, i, &raw_stat);

      NAPI_BUFFER_CAST(uint32_t*, stats_array, raw_stat);
      struct stat st;
      populate_stat(stats_array, &st);

      // TODO: It turns out readdirplus likely won't work with FUSE 29...
      // Metadata caching between readdir/getattr will be enabled when we upgrade fuse-shared-library
      int err = l->readdir_filler((char *) l->buf, name, (struct stat *) &st, 0);
      if (err == 1) {
        break;
      }
    }
  }
})

#ifdef __APPLE__

FUSE_METHOD(setxattr, 5, 1, (const char *path, const char *name, const char *value, size_t size, int flags, uint32_t position), {
  l->path = path;
  l->name = name;
  l->value = value;
  l->size = size;
  l->flags = flags;
  l->position = position;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->name, NAPI_AUTO_LENGTH, &(argv[3]));
  napi_create_external_buffer(env, l->size, (char *) l->value, NULL, NULL, &(argv[4]));
  napi_create_uint32(env, l->position, &(argv[5]));
  napi_create_uint32(env, l->flags, &(argv[6]));
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[2]) == napi_ok);
})

FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size, uint32_t position), {
  l->path = path;
  l->name = name;
  l->value = value;
  l->size = size;
  l->position = position;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->name, NAPI_AUTO_LENGTH, &(argv[3]));
  napi_create_external_buffer(env, l->size, (char *) l->value, NULL, NULL, &(argv[4]));
  napi_create_uint32(env, l->position, &(argv[5]));
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[2]) == napi_ok);
})

#else

FUSE_METHOD(setxattr, 5, 1, (const char *path, const char *name, const char *value, size_t size, int flags), {
  l->path = path;
  l->name = name;
  l->value = value;
  l->size = size;
  l->flags = flags;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->name, NAPI_AUTO_LENGTH, &(argv[3]));
  napi_create_external_buffer(env, l->size, (char *) l->value, NULL, NULL, &(argv[4]));
  napi_create_uint32(env, 0, &(argv[5])); // normalize apis between mac and linux
  napi_create_uint32(env, l->flags, &(argv[6]));
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[2]) == napi_ok);
})

FUSE_METHOD(getxattr, 4, 1, (const char *path, const char *name, char *value, size_t size), {
  l->path = path;
  l->name = name;
  l->value = value;
  l->size = size;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->name, NAPI_AUTO_LENGTH, &(argv[3]));
  napi_create_external_buffer(env, l->size, (char *) l->value, NULL, NULL, &(argv[4]));
  napi_create_uint32(env, 0, &(argv[5]));
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[2]) == napi_ok);
})

#endif

FUSE_METHOD(listxattr, 2, 1, (const char *path, char *list, size_t size), {
  l->path = path;
  l->list = list;
  l->size = size;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_external_buffer(env, l->size, l->list, NULL, NULL, &(argv[3]));
}, {
  if (IS_ARRAY_BUFFER_DETACH_SUPPORTED == 1) assert(napi_detach_arraybuffer(env, argv[2]) == napi_ok);
})

FUSE_METHOD_VOID(removexattr, 2, 0, (const char *path, const char *name), {
  l->path = path;
  l->name = name;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->name, NAPI_AUTO_LENGTH, &(argv[3]));
})

FUSE_METHOD_VOID(flush, 2, 0, (const char *path, struct fuse_file_info *info), {
  l->path = path;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[3]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
  }
})

FUSE_METHOD_VOID(fsync, 3, 0, (const char *path, int datasync, struct fuse_file_info *info), {
  l->path = path;
  l->mode = datasync;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[4]));
  } else {
    napi_create_uint32(env, 0, &(argv[4]));
  }
})

FUSE_METHOD_VOID(fsyncdir, 3, 0, (const char *path, int datasync, struct fuse_file_info *info), {
  l->path = path;
  l->mode = datasync;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[4]));
  } else {
    napi_create_uint32(env, 0, &(argv[4]));
  }
})


FUSE_METHOD_VOID(truncate, 3, 0, (const char *path, off_t size), {
  l->path = path;
  l->offset = size;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->offset, 3)
})

FUSE_METHOD_VOID(ftruncate, 4, 0, (const char *path, off_t size, struct fuse_file_info *info), {
  l->path = path;
  l->offset = size;
  l->info = info;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  if (l->info != NULL) {
    napi_create_uint32(env, l->info->fh, &(argv[3]));
  } else {
    napi_create_uint32(env, 0, &(argv[3]));
  }
  FUSE_UINT64_TO_INTS_ARGV(l->offset, 4)
})

FUSE_METHOD(readlink, 1, 1, (const char *path, char *linkname, size_t len), {
  l->path = path;
  l->linkname = linkname;
  l->len = len;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
}, {
  NAPI_ARGV_UTF8(linkname, l->len, 2)
  strncpy(l->linkname, linkname, l->len);
})

FUSE_METHOD_VOID(chown, 3, 0, (const char *path, uid_t uid, gid_t gid), {
  l->path = path;
  l->uid = uid;
  l->gid = gid;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->uid, &(argv[3]));
  napi_create_uint32(env, l->gid, &(argv[4]));
})

FUSE_METHOD_VOID(chmod, 2, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
})

FUSE_METHOD_VOID(mknod, 3, 0, (const char *path, mode_t mode, dev_t dev), {
  l->path = path;
  l->mode = mode;
  l->dev = dev;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
  napi_create_uint32(env, l->dev, &(argv[4]));
})

FUSE_METHOD_VOID(unlink, 1, 0, (const char *path), {
  l->path = path;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
})

FUSE_METHOD_VOID(rename, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})

FUSE_METHOD_VOID(link, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})

FUSE_METHOD_VOID(symlink, 2, 0, (const char *path, const char *dest), {
  l->path = path;
  l->dest = dest;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_string_utf8(env, l->dest, NAPI_AUTO_LENGTH, &(argv[3]));
})

FUSE_METHOD_VOID(mkdir, 2, 0, (const char *path, mode_t mode), {
  l->path = path;
  l->mode = mode;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_uint32(env, l->mode, &(argv[3]));
})

FUSE_METHOD_VOID(rmdir, 1, 0, (const char *path), {
  l->path = path;
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
})

static void fuse_native_dispatch_init (uv_async_t* handle, fuse_thread_locals_t* l, fuse_thread_t* ft) {
  FUSE_NATIVE_CALLBACK(ft->handlers[op_init], {
    napi_value argv[6];

    argv[0] = locals_handle(env, l);
    napi_create_uint32(env, l->op, &(argv[1]));
    FUSE_NATIVE_CALLER_ARGV(2)

    NAPI_MAKE_CALLBACK(env, NULL, ctx, callback, 6, argv, NULL);
  })
}

NAPI_METHOD(fuse_native_signal_init) {
  NAPI_ARGV(2)
  fuse_thread_locals_t *l = awaiting_locals(env, argv[0]);
  if (l == NULL) return NULL;
  NAPI_ARGV_INT32(res, 1);
  answer(l, res);
  return NULL;
}

static void * fuse_native_init (struct fuse_conn_info *conn) {
  fuse_thread_t *ft = (fuse_thread_t *) fuse_get_context()->private_data;
  fuse_thread_locals_t *l = get_thread_locals();
  if (l == NULL) return ft;
  capture_caller(l);

  l->op = op_init;
  l->op_fn = fuse_native_dispatch_init;
  hand_to_js(l);

  return ft;
}

// Top-level dispatcher

static void fuse_native_dispatch_one (fuse_thread_locals_t *l) {
  fuse_thread_t *ft = l->fuse;
  if (!atomic_load_explicit(&l->pending, memory_order_acquire)) return; // answered at env teardown
  if (ft->env_gone) {
    answer(l, -EIO); // JS can no longer run
    return;
  }
  void (*fn)(uv_async_t *, fuse_thread_locals_t *, fuse_thread_t *) = l->op_fn;

  fn(&(l->async), l, ft);
}

// lxcfs-ts (PATCHES.md 20): serves the queued requests, fairest first, each charged to its namespace with the
// main-thread time it took (JS's synchronous part: lxcfs-ts renders synchronously). At most as many as were
// queued on entry, so timers, signals and I/O get their turn between batches; the rest wake us again.
// Between two requests it also makes the locals a new worker thread may be waiting for: that thread already
// holds a request the kernel gave it, and under load a batch lasts as long as the queue (hundreds of
// renders), so waiting for the next loop iteration (ft_async) made that request wait one batch per worker
// started before it, seconds to tens of seconds while libfuse adds workers.
static void fuse_native_dispatch (uv_async_t* handle) {
  fuse_thread_t *ft = (fuse_thread_t *) handle->data;
  fair_queue_stats_t st;
  fair_queue_stats(&(ft->fq), &st);
  uint32_t budget = st.queued > 0 ? st.queued : 1;
  for (uint32_t i = 0; i < budget; i++) {
    serve_locals_wanted(ft);
    uint64_t key = 0;
    uint64_t start = monotonic_ns();
    fair_queue_item_t *item = fair_queue_pop(&(ft->fq), start, &key);
    if (item == NULL) return;
    fuse_thread_locals_t *l = (fuse_thread_locals_t *) ((char *) item - offsetof(fuse_thread_locals_t, queue_item));
    int urgent = item->urgent; // read before the request is answered: the FUSE thread may queue it again
    fuse_native_dispatch_one(l);
    uint64_t end = monotonic_ns();
    fair_queue_charge(&(ft->fq), key, urgent, end - start, end);
  }
  fair_queue_stats(&(ft->fq), &st);
  if (st.queued > 0) uv_async_send(handle);
}

// lxcfs-ts (PATCHES.md 15): lifecycle of the native state.
//
// A fuse_thread_t and its locals are freed only on the main thread, by teardown, once (a) JS has unmounted,
// (b) the FUSE thread has left fuse_loop_mt and closed the pool, and (c) every worker thread has given its
// locals back (libfuse joins the workers it still lists, but a worker that retired on its own is detached
// and may still be running its pthread key destructor). The pool's on_idle and the FUSE thread's last act
// wake the main thread through ft->async, whose callback checks; teardown then joins the FUSE thread (it
// has nothing left to do but return), closes the libuv handles and drops the N-API references. Nothing here
// ever waits on the main thread for a FUSE thread that may itself wait for JS: while files on a detached
// mount stay open the loop goes on serving, and teardown simply happens later (or never, if the process
// exits first; the memory is then still valid for the threads until exit).

static void ft_unref (fuse_thread_t *ft) {
  if (--ft->refs > 0) return;
  resume_chan_free(ft->rc); // its channel is gone with the session (teardown joined the FUSE thread)
  locals_pool_destroy(&(ft->pool));
  fair_queue_destroy(&(ft->fq));
  uv_mutex_destroy(&(ft->mut));
  uv_sem_destroy(&(ft->sem));
  free(ft);
}

static void ft_finalize (napi_env env, void *data, void *hint) {
  ft_unref((fuse_thread_t *) data);
}

static void ft_closed (uv_handle_t *handle) {
  ft_unref((fuse_thread_t *) handle->data);
}

static void locals_closed (uv_handle_t *handle) {
  locals_unref((fuse_thread_locals_t *) handle->data);
}

// lxcfs-ts: a failed mount, and teardown, drop the references they took, so the Fuse object and its
// handlers can be collected.
static void release_mount_refs (napi_env env, fuse_thread_t *ft) {
  if (ft->ctx != NULL) napi_delete_reference(env, ft->ctx);
  ft->ctx = NULL;
  for (int i = 0; i < 35; i++) {
    if (ft->handlers[i] != NULL) napi_delete_reference(env, ft->handlers[i]);
    ft->handlers[i] = NULL;
  }
}

static void ft_env_cleanup (void *arg);

static void ft_teardown (fuse_thread_t *ft) {
  ft->torn_down = 1;
  pthread_join(ft->thread, NULL);
  if (!ft->env_gone) {
    napi_remove_env_cleanup_hook(ft->env, ft_env_cleanup, ft);
    release_mount_refs(ft->env, ft);
  }
  fuse_thread_locals_t *next;
  for (fuse_thread_locals_t *l = ft->all_locals; l != NULL; l = next) {
    next = l->next_all;
    if (l->self != NULL && !ft->env_gone) napi_delete_reference(ft->env, l->self);
    l->self = NULL;
    uv_close((uv_handle_t *) &(l->async), locals_closed);
  }
  ft->all_locals = NULL;
  uv_close((uv_handle_t *) &(ft->dispatch_async), ft_closed);
  uv_close((uv_handle_t *) &(ft->async), ft_closed);
}

static void ft_maybe_teardown (fuse_thread_t *ft) {
  if (ft->unmounted && !ft->torn_down && locals_pool_idle(&(ft->pool))) ft_teardown(ft);
}

// Node's environment is going away (process exit) while the mount may still be served: answer what waits
// for JS with EIO, and make no N-API call from here on (the references die with the environment).
static void ft_env_cleanup (void *arg) {
  fuse_thread_t *ft = (fuse_thread_t *) arg;
  ft->env_gone = 1;
  // lxcfs-ts (PATCHES.md 19): after a hand-over the requests waiting here are left unanswered: the process
  // exits, and the next daemon gets them again from the kernel (FUSE_NOTIFY_RESEND) instead of the caller
  // getting EIO.
  if (atomic_load(&ft->handed_over)) return;
  // Close the queue first: it lets go of what waits and refuses later pushes, so a thread answered here
  // cannot queue its locals again behind our back (hand_to_js answers itself EIO then).
  fair_queue_close(&(ft->fq));
  // Claimed with the same compare-and-swap as hand_to_js's refused push, so a request is answered once:
  // by this loop (which posts) or by its own thread (which then does not wait).
  for (fuse_thread_locals_t *l = ft->all_locals; l != NULL; l = l->next_all) {
    int expected = 1;
    if (atomic_compare_exchange_strong(&l->pending, &expected, 0)) {
      l->res = -EIO;
      uv_sem_post(&(l->sem)); // orders the write above before the FUSE thread's read
    }
  }
}

static void locals_never_signalled (uv_async_t *handle) {}

// Main thread: makes the locals a worker asked for (a libuv handle must be initialised on its loop's thread).
static fuse_thread_locals_t *locals_new (fuse_thread_t *ft) {
  fuse_thread_locals_t *l = calloc(1, sizeof(fuse_thread_locals_t));
  if (l == NULL) return NULL;
  if (uv_sem_init(&(l->sem), 0) != 0) {
    free(l);
    return NULL;
  }
  // lxcfs-ts: never sent since PATCHES.md 20 (requests wake ft->dispatch_async); kept as the handle whose close
  // ends the locals' life (locals_closed), as in PATCHES.md 15.
  if (uv_async_init(uv_default_loop(), &(l->async), (uv_async_cb) locals_never_signalled) != 0) {
    uv_sem_destroy(&(l->sem));
    free(l);
    return NULL;
  }
  uv_unref((uv_handle_t *) &(l->async));
  l->async.data = l;
  l->fuse = ft;
  l->refs = 1;
  l->next_all = ft->all_locals;
  ft->all_locals = l;
  return l;
}

// lxcfs-ts (PATCHES.md 19): a resume that failed on the FUSE thread (before INIT reached JS, so the mount
// callback would wait for ever): JS's ctx._onResumeError(message) fails the mount.
static void ft_report_resume_error (fuse_thread_t *ft) {
  int err = __atomic_load_n(&ft->resume_error, __ATOMIC_ACQUIRE);
  if (err == 0 || ft->resume_reported || ft->env_gone || ft->ctx == NULL) return;
  ft->resume_reported = 1;
  napi_env env = ft->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value ctx, fn, msg;
  napi_get_reference_value(env, ft->ctx, &ctx);
  char text[256];
  snprintf(text, sizeof(text), "cannot resume the FUSE connection: %s", strerror(-err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  if (napi_get_named_property(env, ctx, "_onResumeError", &fn) == napi_ok) {
    napi_valuetype type;
    napi_typeof(env, fn, &type);
    if (type == napi_function) napi_make_callback(env, NULL, ctx, fn, 1, &msg, NULL);
  }
  napi_close_handle_scope(env, scope);
}

// Main thread: makes the locals a new worker thread waits for (get_thread_locals), if one does.
static void serve_locals_wanted (fuse_thread_t *ft) {
  if (atomic_exchange(&(ft->locals_wanted), 0)) {
    ft->new_locals = locals_new(ft);
    if (ft->new_locals != NULL) ft->locals_made++;
    uv_sem_post(&(ft->sem));
  }
}

static void ft_async (uv_async_t* handle) {
  fuse_thread_t *ft = (fuse_thread_t *) handle->data;
  serve_locals_wanted(ft);
  ft_report_resume_error(ft);
  ft_maybe_teardown(ft);
}

static fuse_thread_locals_t* get_thread_locals (void) {
  struct fuse_context *ctx = fuse_get_context();
  fuse_thread_t *ft = (fuse_thread_t *) ctx->private_data;

  void *data = pthread_getspecific(thread_locals_key);

  if (data != NULL) {
    return (fuse_thread_locals_t *) data;
  }

  // lxcfs-ts: fuse_loop_mt starts and retires worker threads all the time under concurrent load; reuse the
  // locals of an exited thread instead of allocating (and leaking) new ones for every thread.
  locals_pool_item_t *item = locals_pool_take(&(ft->pool));
  fuse_thread_locals_t *l = NULL;
  if (item != NULL) {
    l = (fuse_thread_locals_t *) ((char *) item - offsetof(fuse_thread_locals_t, pool_item));
  } else {
    // Ask the main thread for new ones, one request at a time.
    uv_mutex_lock(&(ft->mut));
    atomic_store(&(ft->locals_wanted), 1);
    uv_async_send(&(ft->async));
    uv_sem_wait(&(ft->sem));
    l = ft->new_locals;
    ft->new_locals = NULL;
    uv_mutex_unlock(&(ft->mut));
    if (l == NULL) {
      locals_pool_abandon(&(ft->pool));
      return NULL; // out of memory: this request fails with ENOMEM, a later one asks again
    }
    locals_pool_added(&(ft->pool));
  }

  pthread_setspecific(thread_locals_key, (void *) l);
  return l;
}

// lxcfs-ts: pthread key destructor, run when a FUSE worker thread exits: its locals go back to the pool.
// The fuse_thread_t stays allocated until the pool is idle, so this never touches freed memory.
static void free_thread_locals (void *data) {
  fuse_thread_locals_t *l = (fuse_thread_locals_t *) data;
  locals_pool_put(&(l->fuse->pool), &(l->pool_item));
}

// Pool idle (under the pool's lock): wake the main thread to tear down.
static void ft_pool_idle (void *arg) {
  fuse_thread_t *ft = (fuse_thread_t *) arg;
  uv_async_send(&(ft->async));
}

static void* start_fuse_thread (void *data) {
  fuse_thread_t *ft = (fuse_thread_t *) data;
  // lxcfs-ts (PATCHES.md 19): a resumable channel first learns whether the kernel can resend requests (a
  // taken-over connection asks it to), and a taken-over one plays the kernel's recorded INIT to the new
  // session (on this thread: fuse-native's init hands over to JS, which the main thread must be free for).
  int resume_err = ft->rc != NULL ? resume_chan_start(ft->rc) : 0;
  if (resume_err == 0) fuse_loop_mt(ft->fuse);

  if (resume_err != 0) {
    // Nothing was served. Not fuse_unmount(): that would unmount the mount this connection still serves for
    // containers; the daemon decides. fuse_destroy closes the channel (and with it the descriptors).
    __atomic_store_n(&ft->resume_error, resume_err, __ATOMIC_RELEASE);
    uv_async_send(&(ft->async));
  } else {
    // lxcfs-ts: fuse_unmount() already removes the channel from the session and frees it; upstream's
    // fuse_session_remove_chan(ft->ch) here read (and could write) freed memory.
    fuse_unmount(ft->mnt, ft->ch);
  }
  fuse_destroy(ft->fuse);

  // The workers are gone or going; their locals come back to the pool as they exit.
  locals_pool_close(&(ft->pool));
  uv_async_send(&(ft->async));
  return NULL;
}

// ---- lxcfs-ts (PATCHES.md 19): resumable channels ----

#define MOUNT_PLAIN 0
#define MOUNT_RESUMABLE 1
#define MOUNT_RESUME 2

static int rc_chan_receive (struct fuse_chan **chp, char *buf, size_t size) {
  return resume_chan_receive((resume_chan_t *) fuse_chan_data(*chp), buf, size);
}

static int rc_chan_send (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  return resume_chan_send((resume_chan_t *) fuse_chan_data(ch), iov, count);
}

// The channel's descriptor (fuse_unmount takes it away first and closes it itself). The resume_chan_t stays
// until the fuse_thread_t goes: JS may still ask it for its stats.
static void rc_chan_destroy (struct fuse_chan *ch) {
  int fd = fuse_chan_fd(ch);
  if (fd >= 0) close(fd);
}

static void session_process (void *ctx, const char *req, size_t len) {
  struct fuse_chan *ch = (struct fuse_chan *) ctx;
  struct fuse_buf buf = { .size = len, .flags = 0, .mem = (void *) req, .fd = -1, .pos = 0 };
  fuse_session_process_buf(fuse_chan_session(ch), &buf, ch);
}

static int session_exited (void *ctx) {
  return fuse_session_exited(fuse_chan_session((struct fuse_chan *) ctx));
}

static void session_exit (void *ctx) {
  fuse_session_exit(fuse_chan_session((struct fuse_chan *) ctx));
}

// A libfuse channel over fuse_fd that a later daemon can take over (state_fd < 0: a new connection). NULL
// with msg set on failure; both descriptors are closed then.
static struct fuse_chan *resumable_channel (int fuse_fd, int state_fd, const char *mnt, resume_chan_t **rc_out, char *msg, size_t msg_size) {
  resume_chan_t *rc = NULL;
  int r = resume_chan_new(fuse_fd, state_fd, mnt, &rc);
  if (r < 0) {
    snprintf(msg, msg_size, "%s: %s", state_fd >= 0 ? "the stored FUSE state is not usable" : "cannot make the FUSE state", strerror(-r));
    close(fuse_fd);
    return NULL;
  }
  struct fuse_chan_ops ops = { .receive = rc_chan_receive, .send = rc_chan_send, .destroy = rc_chan_destroy };
  // The buffer size libfuse's own channel uses (fuse_kern_chan.c): a page plus 4 KiB, at least 0x21000.
  size_t bufsize = (size_t) getpagesize() + 0x1000;
  if (bufsize < 0x21000) bufsize = 0x21000;
  struct fuse_chan *ch = fuse_chan_new(&ops, fuse_fd, bufsize, rc);
  if (ch == NULL) {
    snprintf(msg, msg_size, "fuse_chan_new failed");
    resume_chan_free(rc);
    close(fuse_fd);
    return NULL;
  }
  *rc_out = rc;
  return ch;
}

// After a failure: a mount made here is unmounted; a taken-over connection is only let go.
static void drop_channel (fuse_thread_t *ft, const char *mnt, struct fuse_chan *ch) {
  if (ft->resumed) fuse_chan_destroy(ch);
  else fuse_unmount(mnt, ch);
}

enum { DROP_MOUNT_OPTION = 1 };

// The options fuse_mount() consumes (libfuse 2.9.9's mount.c): not libfuse's to parse in fuse_new().
static const struct fuse_opt mount_only_options[] = {
  FUSE_OPT_KEY("allow_other", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("nonempty", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("blkdev", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("auto_unmount", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("fsname=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("subtype=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("large_read", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("blksize=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("default_permissions", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("context=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("fscontext=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("defcontext=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("rootcontext=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("user=", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("-r", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("ro", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("rw", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("suid", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("nosuid", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("dev", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("nodev", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("exec", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("noexec", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("async", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("sync", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("dirsync", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("atime", DROP_MOUNT_OPTION),
  FUSE_OPT_KEY("noatime", DROP_MOUNT_OPTION),
  FUSE_OPT_END
};

static int drop_mount_option (void *data, const char *arg, int key, struct fuse_args *outargs) {
  return key == DROP_MOUNT_OPTION ? 0 : 1;
}

// fuse_native_mount(mnt, options, ctx, handlers, implemented, mode, fuseFd, stateFd). mode: 0 a mount served
// by libfuse's own channel (upstream), 1 a mount served by a resumable channel, 2 no mount: the stored
// connection fuseFd (with its state stateFd; both owned from now on, closed on failure) is served again.
NAPI_METHOD(fuse_native_mount) {
  NAPI_ARGV(8)

  NAPI_ARGV_UTF8(mnt, 1024, 0);
  NAPI_ARGV_UTF8(mntopts, 1024, 1);
  napi_value handlers = argv[3];
  NAPI_ARGV_BUFFER_CAST(uint32_t *, implemented, 4)
  NAPI_ARGV_INT32(mode, 5)
  NAPI_ARGV_INT32(fuse_fd, 6)
  NAPI_ARGV_INT32(state_fd, 7)
  if (mode < MOUNT_PLAIN || mode > MOUNT_RESUME || (mode == MOUNT_RESUME && (fuse_fd < 0 || state_fd < 0))) {
    napi_throw_error(env, "EINVAL", "fuse_native_mount: bad mode or descriptors");
    return NULL;
  }

  fuse_thread_t *ft = calloc(1, sizeof(fuse_thread_t));
  if (ft == NULL) {
    napi_throw_error(env, "ENOMEM", "fuse_native_mount: out of memory");
    return NULL;
  }
  napi_create_reference(env, argv[2], 1, &(ft->ctx));

  NAPI_FOR_EACH(handlers, handler) {
    if (i < 35) napi_create_reference(env, handler, 1, &ft->handlers[i]);
  }

  ft->env = env;

  struct fuse_operations ops = { };
  if (implemented[op_access]) ops.access = fuse_native_access;
  if (implemented[op_truncate]) ops.truncate = fuse_native_truncate;
  if (implemented[op_ftruncate]) ops.ftruncate = fuse_native_ftruncate;
  if (implemented[op_getattr]) ops.getattr = fuse_native_getattr;
  if (implemented[op_fgetattr]) ops.fgetattr = fuse_native_fgetattr;
  if (implemented[op_flush]) ops.flush = fuse_native_flush;
  if (implemented[op_fsync]) ops.fsync = fuse_native_fsync;
  if (implemented[op_fsyncdir]) ops.fsyncdir = fuse_native_fsyncdir;
  if (implemented[op_readdir]) ops.readdir = fuse_native_readdir;
  if (implemented[op_readlink]) ops.readlink = fuse_native_readlink;
  if (implemented[op_chown]) ops.chown = fuse_native_chown;
  if (implemented[op_chmod]) ops.chmod = fuse_native_chmod;
  if (implemented[op_mknod]) ops.mknod = fuse_native_mknod;
  if (implemented[op_setxattr]) ops.setxattr = fuse_native_setxattr;
  if (implemented[op_getxattr]) ops.getxattr = fuse_native_getxattr;
  if (implemented[op_listxattr]) ops.listxattr = fuse_native_listxattr;
  if (implemented[op_removexattr]) ops.removexattr = fuse_native_removexattr;
  if (implemented[op_statfs]) ops.statfs = fuse_native_statfs;
  if (implemented[op_open]) ops.open = fuse_native_open;
  if (implemented[op_opendir]) ops.opendir = fuse_native_opendir;
  if (implemented[op_read]) ops.read = fuse_native_read;
  if (implemented[op_write]) ops.write = fuse_native_write;
  if (implemented[op_release]) ops.release = fuse_native_release;
  if (implemented[op_releasedir]) ops.releasedir = fuse_native_releasedir;
  if (implemented[op_create]) ops.create = fuse_native_create;
  if (implemented[op_utimens]) ops.utimens = fuse_native_utimens;
  if (implemented[op_unlink]) ops.unlink = fuse_native_unlink;
  if (implemented[op_rename]) ops.rename = fuse_native_rename;
  if (implemented[op_link]) ops.link = fuse_native_link;
  if (implemented[op_symlink]) ops.symlink = fuse_native_symlink;
  if (implemented[op_mkdir]) ops.mkdir = fuse_native_mkdir;
  if (implemented[op_rmdir]) ops.rmdir = fuse_native_rmdir;
  if (implemented[op_init]) ops.init = fuse_native_init;

  // (Built with fuse_opt_add_arg, which only appends to arguments it allocated itself.)
  struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
  fuse_opt_add_arg(&args, "fuse_bindings_dummy");
  if (strcmp(mntopts, "-o") > 0) fuse_opt_add_arg(&args, mntopts);
  // lxcfs-ts (PATCHES.md 19): libfuse may splice requests and replies straight between the descriptor and
  // a pipe, past the channel's receive and send; a resumable channel must see every one of them.
  if (mode != MOUNT_PLAIN) fuse_opt_add_arg(&args, "-ono_splice_read,no_splice_write,no_splice_move");
  errno = 0;
  char msg[2400];
  const char *code = NULL;
  struct fuse_chan *ch = NULL;
  if (mode == MOUNT_RESUME) {
    // lxcfs-ts (PATCHES.md 19): no mount; the stored connection is served as it is. Its mount options
    // were applied when it was mounted, so only libfuse's own options are kept.
    fuse_opt_parse(&args, NULL, mount_only_options, drop_mount_option);
    ch = resumable_channel(fuse_fd, state_fd, mnt, &(ft->rc), msg, sizeof(msg));
    if (ch == NULL) code = "EFUSERESUME";
    ft->resumed = ch != NULL;
  } else {
    ch = fuse_mount(mnt, &args);
    if (ch == NULL) {
      snprintf(msg, sizeof(msg), "fuse_mount failed on %s: %s (options %s)", mnt, errno ? strerror(errno) : "see libfuse message on stderr", mntopts);
      code = "EFUSEMOUNT";
    } else if (mode == MOUNT_RESUMABLE) {
      // Serve the new connection through a resumable channel on a copy of its descriptor.
      int fd = fcntl(fuse_chan_fd(ch), F_DUPFD_CLOEXEC, 3);
      struct fuse_chan *rch = fd < 0 ? NULL : resumable_channel(fd, -1, mnt, &(ft->rc), msg, sizeof(msg));
      if (rch == NULL) {
        if (fd < 0) snprintf(msg, sizeof(msg), "cannot copy the FUSE descriptor: %s", strerror(errno));
        fuse_unmount(mnt, ch); // the copy, if any, was closed with the channel
        ch = NULL;
        code = "EFUSERESUME";
      } else {
        fuse_chan_destroy(ch); // closes the original descriptor; the copy serves
        ch = rch;
      }
    }
  }

  if (ch == NULL) {
    fuse_opt_free_args(&args);
    release_mount_refs(env, ft);
    resume_chan_free(ft->rc);
    free(ft);
    napi_throw_error(env, code, msg);
    return NULL;
  }

  struct fuse *fuse = fuse_new(ch, &args, &ops, sizeof(struct fuse_operations), ft);
  fuse_opt_free_args(&args);

  if (fuse == NULL) {
    // Never leave a mount without a daemon behind it (a stored connection is left to the daemon).
    drop_channel(ft, mnt, ch);
    snprintf(msg, sizeof(msg), "fuse_new failed on %s (bad options? %s)", mnt, mntopts);
    release_mount_refs(env, ft);
    resume_chan_free(ft->rc);
    free(ft);
    napi_throw_error(env, "EFUSENEW", msg);
    return NULL;
  }
  if (ft->rc != NULL) {
    resume_session_t session = { .ctx = ch, .process = session_process, .exited = session_exited, .exit = session_exit };
    resume_chan_set_session(ft->rc, &session);
  }

  uv_mutex_init(&(ft->mut));
  uv_sem_init(&(ft->sem), 0);
  locals_pool_init(&(ft->pool), ft_pool_idle, ft);
  fair_queue_init(&(ft->fq));

  memcpy(ft->mnt, mnt, sizeof(ft->mnt)); // both NUL-terminated 1024-byte buffers (NAPI_ARGV_UTF8)
  memcpy(ft->mntopts, mntopts, sizeof(ft->mntopts));
  ft->fuse = fuse;
  ft->ch = ch;

  int err = uv_async_init(uv_default_loop(), &(ft->async), (uv_async_cb) ft_async);
  if (err < 0) {
    if (!ft->resumed) fuse_unmount(mnt, ch);
    fuse_destroy(fuse);
    release_mount_refs(env, ft);
    locals_pool_destroy(&(ft->pool));
    fair_queue_destroy(&(ft->fq));
    uv_mutex_destroy(&(ft->mut));
    uv_sem_destroy(&(ft->sem));
    resume_chan_free(ft->rc);
    free(ft);
    napi_throw_error(env, "EFUSEASYNC", uv_strerror(err));
    return NULL;
  }
  ft->async.data = ft;
  ft->refs = 1; // the mount, until teardown has closed ft->async
  err = uv_async_init(uv_default_loop(), &(ft->dispatch_async), (uv_async_cb) fuse_native_dispatch);
  if (err < 0) {
    if (!ft->resumed) fuse_unmount(mnt, ch);
    fuse_destroy(fuse);
    release_mount_refs(env, ft);
    ft->unmounted = 1;
    ft->torn_down = 1;
    uv_close((uv_handle_t *) &(ft->async), ft_closed);
    napi_throw_error(env, "EFUSEASYNC", uv_strerror(err));
    return NULL;
  }
  ft->dispatch_async.data = ft;
  ft->refs++; // until teardown has closed ft->dispatch_async

  napi_value handle = NULL;
  if (napi_create_external(env, ft, ft_finalize, NULL, &handle) == napi_ok) ft->refs++; // the JS handle
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  err = handle == NULL ? ENOMEM : pthread_create(&(ft->thread), &attr, start_fuse_thread, ft);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    if (!ft->resumed) fuse_unmount(mnt, ch);
    fuse_destroy(fuse);
    release_mount_refs(env, ft);
    ft->unmounted = 1;
    ft->torn_down = 1;
    uv_close((uv_handle_t *) &(ft->dispatch_async), ft_closed);
    uv_close((uv_handle_t *) &(ft->async), ft_closed);
    napi_throw_error(env, "EFUSETHREAD", strerror(err));
    return NULL;
  }
  napi_add_env_cleanup_hook(env, ft_env_cleanup, ft);

  return handle;
}

// JS has unmounted (umount2 done or the mount already gone). The FUSE thread ends when the kernel ends the
// connection, once no file on the detached mount is open; teardown follows it (see above). The async
// handle no longer keeps the loop alive, so a process that only waits for this may exit before that.
NAPI_METHOD(fuse_native_unmount) {
  NAPI_ARGV(2)
  void *data = NULL;
  if (napi_get_value_external(env, argv[1], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "fuse_native_unmount: not a mount handle");
    return NULL;
  }
  fuse_thread_t *ft = (fuse_thread_t *) data;
  if (ft->unmounted) return NULL;
  ft->unmounted = 1;
  uv_unref((uv_handle_t *) &(ft->async));
  uv_unref((uv_handle_t *) &(ft->dispatch_async));
  ft_maybe_teardown(ft);
  return NULL;
}

// threadStats(handle): [locals made, threads served, reused, given back, peak in use, in use, finished,
// torn down, a worker waits for the main thread to make its locals (0/1), locals the main thread made]
// (see index.d.ts).
NAPI_METHOD(fuse_native_thread_stats) {
  NAPI_ARGV(1)
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "fuse_native_thread_stats: not a mount handle");
    return NULL;
  }
  fuse_thread_t *ft = (fuse_thread_t *) data;
  locals_pool_stats_t s;
  locals_pool_stats(&(ft->pool), &s);
  const double values[10] = { s.created, (double) s.threads, (double) s.reused, (double) s.returned, s.peak, s.in_use, s.closed, ft->torn_down,
                               atomic_load(&(ft->locals_wanted)), ft->locals_made };
  napi_value result;
  napi_create_array_with_length(env, 10, &result);
  for (uint32_t i = 0; i < 10; i++) {
    napi_value v;
    napi_create_double(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

// dispatchStats(handle): [queued, flows, served, overtaken] of the fair hand-off (PATCHES.md 20). Sweeps idle
// flows first, so flows counts only namespaces that asked lately.
NAPI_METHOD(fuse_native_dispatch_stats) {
  NAPI_ARGV(1)
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "fuse_native_dispatch_stats: not a mount handle");
    return NULL;
  }
  fuse_thread_t *ft = (fuse_thread_t *) data;
  fair_queue_sweep(&(ft->fq), monotonic_ns());
  fair_queue_stats_t s;
  fair_queue_stats(&(ft->fq), &s);
  const double values[4] = { s.queued, s.flows, (double) s.served, (double) s.overtaken };
  napi_value result;
  napi_create_array_with_length(env, 4, &result);
  for (uint32_t i = 0; i < 4; i++) {
    napi_value v;
    napi_create_double(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

// configureFairQueue(handle, halfLifeMs, maxWaitMs): another half-life and longest wait for the fair queue
// (0 keeps one); for tests that must not depend on how long their steps take.
NAPI_METHOD(fuse_native_configure_fair_queue) {
  NAPI_ARGV(3)
  void *data = NULL;
  if (napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "fuse_native_configure_fair_queue: not a mount handle");
    return NULL;
  }
  NAPI_ARGV_UINT32(half_life_ms, 1)
  NAPI_ARGV_UINT32(max_wait_ms, 2)
  fair_queue_configure(&(((fuse_thread_t *) data)->fq), (uint64_t) half_life_ms * 1000000ULL, (uint64_t) max_wait_ms * 1000000ULL);
  return NULL;
}

// ---- lxcfs-ts (PATCHES.md 19): the connection behind a resumable mount ----

static fuse_thread_t *mount_of (napi_env env, napi_value v, const char *who) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    char m[128];
    snprintf(m, sizeof(m), "%s: not a mount handle", who);
    napi_throw_type_error(env, "EINVAL", m);
    return NULL;
  }
  return (fuse_thread_t *) data;
}

static napi_value number_array (napi_env env, const double *values, uint32_t n) {
  napi_value result;
  napi_create_array_with_length(env, n, &result);
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_create_double(env, values[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

// connection(handle): [fuse fd, state fd, resumed] of a resumable mount, or null.
NAPI_METHOD(fuse_native_connection) {
  NAPI_ARGV(1)
  fuse_thread_t *ft = mount_of(env, argv[0], "connection");
  if (ft == NULL) return NULL;
  if (ft->rc == NULL || ft->torn_down) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  const double values[3] = { resume_chan_fuse_fd(ft->rc), resume_chan_state_fd(ft->rc), ft->resumed };
  return number_array(env, values, 3);
}

// connectionStats(handle): [resumed, generation, nodes, handles, lookups made up, reopened, answered here,
// forgets dropped, resend (0 or errno, -1 not sent), in flight, parked], or null.
NAPI_METHOD(fuse_native_connection_stats) {
  NAPI_ARGV(1)
  fuse_thread_t *ft = mount_of(env, argv[0], "connectionStats");
  if (ft == NULL) return NULL;
  if (ft->rc == NULL) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  resume_chan_stats_t st;
  resume_chan_stats(ft->rc, &st);
  const double values[11] = { st.resumed, (double) st.generation, st.nodes, st.handles, (double) st.lookups_injected, (double) st.reopened, (double) st.stale_answered, (double) st.forgets_dropped, st.resend, st.in_flight, st.parked };
  return number_array(env, values, 11);
}

// connectionDevice(handle, "major:minor"): records the mount's device in the state. 0 or an errno.
NAPI_METHOD(fuse_native_connection_device) {
  NAPI_ARGV(2)
  fuse_thread_t *ft = mount_of(env, argv[0], "connectionDevice");
  if (ft == NULL) return NULL;
  NAPI_ARGV_UTF8(device, 64, 1)
  int r = ft->rc == NULL ? EINVAL : -resume_chan_set_device(ft->rc, device);
  NAPI_RETURN_INT32(r)
}

// handOver(handle): no more requests are read; those read are finished; the ones still waiting for JS when
// the process exits are left for the next daemon (no EIO). Returns how many are in flight.
NAPI_METHOD(fuse_native_hand_over) {
  NAPI_ARGV(1)
  fuse_thread_t *ft = mount_of(env, argv[0], "handOver");
  if (ft == NULL) return NULL;
  if (ft->rc == NULL) {
    napi_throw_error(env, "EINVAL", "handOver: not a resumable mount");
    return NULL;
  }
  atomic_store(&ft->handed_over, 1);
  resume_chan_park(ft->rc);
  resume_chan_stats_t st;
  resume_chan_stats(ft->rc, &st);
  NAPI_RETURN_UINT32(st.in_flight)
}

// inspectState(fd): [0, version, generation, nodes, init bytes, mountpoint, device], or [errno].
NAPI_METHOD(fuse_native_inspect_state) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  resume_state_info_t state;
  int r = resume_state_inspect(fd, &state);
  napi_value result, v;
  napi_create_array(env, &result);
  napi_create_int32(env, -r, &v);
  napi_set_element(env, result, 0, v);
  if (r == 0) {
    const double values[4] = { state.version, (double) state.generation, state.nodes, state.init_len };
    for (uint32_t i = 0; i < 4; i++) {
      napi_create_double(env, values[i], &v);
      napi_set_element(env, result, i + 1, v);
    }
    napi_create_string_utf8(env, state.mountpoint, NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, result, 5, v);
    napi_create_string_utf8(env, state.device, NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, result, 6, v);
  }
  return result;
}

// fdInfo(fd): [kind, live]. kind 0: not open, 1: /dev/fuse, 2: a regular file or memfd, 3: something else.
// live (for /dev/fuse): 1 while its connection stands, 0 once the kernel ended it (poll reports POLLERR).
// It also marks fd close-on-exec: descriptors inherited from the service manager must not leak into the
// programs the daemon runs.
NAPI_METHOD(fuse_native_fd_info) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  double kind = 0, live = 0;
  struct stat st;
  if (fd >= 0 && fstat(fd, &st) == 0) {
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 10 && minor(st.st_rdev) == 229) {
      kind = 1;
      struct pollfd pfd = { .fd = fd, .events = 0 };
      live = poll(&pfd, 1, 0) >= 0 && !(pfd.revents & (POLLERR | POLLHUP | POLLNVAL));
    } else {
      kind = S_ISREG(st.st_mode) ? 2 : 3;
    }
  }
  const double values[2] = { kind, live };
  return number_array(env, values, 2);
}

// lxcfs-ts: unmount without fusermount (which a fresh machine lacks); needs root. Returns 0 or an errno.
NAPI_METHOD(fuse_native_umount2) {
  NAPI_ARGV(2)
  NAPI_ARGV_UTF8(mnt, 1024, 0);
  NAPI_ARGV_INT32(flags, 1);
  int res = umount2(mnt, flags) == 0 ? 0 : errno;
  NAPI_RETURN_INT32(res)
}

// lxcfs-ts: sd_notify(3) for systemd readiness, watchdog and status (sd-notify.c). Arguments: the socket
// name ($NOTIFY_SOCKET), the state lines, and a Buffer of int32 descriptors (may be empty). Returns 0 or errno.
NAPI_METHOD(fuse_native_sd_notify) {
  NAPI_ARGV(3)
  NAPI_ARGV_UTF8(socket_path, 1024, 0);
  NAPI_ARGV_BUFFER_CAST(int32_t *, fds, 2);
  NAPI_ARGV_UTF8_MALLOC(state, 1); // last: a throwing macro after it would leak it
  int res = lxcfs_sd_notify(socket_path, state, (const int *) fds, fds_len / sizeof(int32_t));
  free(state);
  NAPI_RETURN_INT32(res)
}

// lxcfs-ts: flock(2) for the locked pid file (sd-notify.c). Returns 0 or errno (EWOULDBLOCK: held elsewhere).
NAPI_METHOD(fuse_native_flock) {
  NAPI_ARGV(2)
  NAPI_ARGV_INT32(fd, 0);
  NAPI_ARGV_INT32(operation, 1);
  NAPI_RETURN_INT32(lxcfs_flock(fd, operation))
}

NAPI_INIT() {
  const napi_node_version* version;
  assert(napi_get_node_version(env, &version) == napi_ok);

  if (version->major > 12 || (version->major == 12 && version->minor >= 16)) {
    IS_ARRAY_BUFFER_DETACH_SUPPORTED = 1;
  }

  pthread_key_create(&(thread_locals_key), free_thread_locals);

  NAPI_EXPORT_FUNCTION(fuse_native_mount)
  NAPI_EXPORT_FUNCTION(fuse_native_unmount)
  NAPI_EXPORT_FUNCTION(fuse_native_umount2)
  NAPI_EXPORT_FUNCTION(fuse_native_thread_stats)
  NAPI_EXPORT_FUNCTION(fuse_native_dispatch_stats)
  NAPI_EXPORT_FUNCTION(fuse_native_configure_fair_queue)
  NAPI_EXPORT_FUNCTION(fuse_native_connection)
  NAPI_EXPORT_FUNCTION(fuse_native_connection_stats)
  NAPI_EXPORT_FUNCTION(fuse_native_connection_device)
  NAPI_EXPORT_FUNCTION(fuse_native_hand_over)
  NAPI_EXPORT_FUNCTION(fuse_native_inspect_state)
  NAPI_EXPORT_FUNCTION(fuse_native_fd_info)
  NAPI_EXPORT_FUNCTION(fuse_native_render_cache)
  NAPI_EXPORT_FUNCTION(fuse_native_render_cache_stats)
  NAPI_EXPORT_FUNCTION(fuse_native_render_cache_sweep)
  NAPI_EXPORT_UINT32(render_cache_max)
  NAPI_EXPORT_UINT32(mnt_detach)
  NAPI_EXPORT_FUNCTION(fuse_native_sd_notify)
  NAPI_EXPORT_FUNCTION(fuse_native_flock)
  NAPI_EXPORT_UINT32(lock_sh)
  NAPI_EXPORT_UINT32(lock_ex)
  NAPI_EXPORT_UINT32(lock_nb)
  NAPI_EXPORT_UINT32(lock_un)

  NAPI_EXPORT_FUNCTION(fuse_native_signal_getattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_init)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_access)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_statfs)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_fgetattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_getattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_flush)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_fsync)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_fsyncdir)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_readdir)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_truncate)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_ftruncate)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_utimens)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_readlink)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_chown)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_chmod)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_mknod)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_setxattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_getxattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_listxattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_removexattr)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_open)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_opendir)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_read)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_write)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_release)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_releasedir)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_create)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_unlink)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_rename)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_link)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_symlink)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_mkdir)
  NAPI_EXPORT_FUNCTION(fuse_native_signal_rmdir)

  NAPI_EXPORT_UINT32(op_getattr)
  NAPI_EXPORT_UINT32(op_init)
  NAPI_EXPORT_UINT32(op_error)
  NAPI_EXPORT_UINT32(op_access)
  NAPI_EXPORT_UINT32(op_statfs)
  NAPI_EXPORT_UINT32(op_fgetattr)
  NAPI_EXPORT_UINT32(op_getattr)
  NAPI_EXPORT_UINT32(op_flush)
  NAPI_EXPORT_UINT32(op_fsync)
  NAPI_EXPORT_UINT32(op_fsyncdir)
  NAPI_EXPORT_UINT32(op_readdir)
  NAPI_EXPORT_UINT32(op_truncate)
  NAPI_EXPORT_UINT32(op_ftruncate)
  NAPI_EXPORT_UINT32(op_utimens)
  NAPI_EXPORT_UINT32(op_readlink)
  NAPI_EXPORT_UINT32(op_chown)
  NAPI_EXPORT_UINT32(op_chmod)
  NAPI_EXPORT_UINT32(op_mknod)
  NAPI_EXPORT_UINT32(op_setxattr)
  NAPI_EXPORT_UINT32(op_getxattr)
  NAPI_EXPORT_UINT32(op_listxattr)
  NAPI_EXPORT_UINT32(op_removexattr)
  NAPI_EXPORT_UINT32(op_open)
  NAPI_EXPORT_UINT32(op_opendir)
  NAPI_EXPORT_UINT32(op_read)
  NAPI_EXPORT_UINT32(op_write)
  NAPI_EXPORT_UINT32(op_release)
  NAPI_EXPORT_UINT32(op_releasedir)
  NAPI_EXPORT_UINT32(op_create)
  NAPI_EXPORT_UINT32(op_unlink)
  NAPI_EXPORT_UINT32(op_rename)
  NAPI_EXPORT_UINT32(op_link)
  NAPI_EXPORT_UINT32(op_symlink)
  NAPI_EXPORT_UINT32(op_mkdir)
  NAPI_EXPORT_UINT32(op_rmdir)
}
