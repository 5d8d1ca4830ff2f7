// lxcfs-ts: the free list of per-thread state (PATCHES.md 2 and 15), apart from FUSE and N-API so that
// test/locals-pool-test.c can hammer it under ThreadSanitizer.
//
// libfuse's multithreaded loop starts and retires worker threads all the time. Each worker needs a
// fuse_thread_locals_t (a semaphore and a libuv async handle made on the main thread); instead of making
// one per thread and leaking it, a thread takes a free one (locals_pool_take) and gives it back when it
// exits (locals_pool_put, from its pthread key destructor). The pool also tells its owner when it is safe
// to free the memory every worker touched: once the owner closed it (no worker will take again) and every
// taken item is back, on_idle runs, under the pool's lock, exactly once.

#ifndef LXCFS_TS_LOCALS_POOL_H
#define LXCFS_TS_LOCALS_POOL_H

#include <pthread.h>
#include <stdint.h>

// Embed one in the pooled struct; the pool never allocates or frees items.
typedef struct locals_pool_item {
  struct locals_pool_item *next_free;
} locals_pool_item_t;

typedef struct {
  uint32_t created;  // items made (locals_pool_added)
  uint32_t in_use;   // items held (or being made) by live threads now
  uint32_t peak;     // most items held (or being made) at once; created never exceeds it
  uint64_t threads;  // threads that got an item, new or reused
  uint64_t reused;   // of which got one an exited thread gave back
  uint64_t returned; // items given back by exiting threads
  int closed;
} locals_pool_stats_t;

typedef struct {
  pthread_mutex_t lock;
  locals_pool_item_t *free;
  locals_pool_stats_t stats;
  void (*on_idle) (void *arg);
  void *idle_arg;
} locals_pool_t;

// on_idle(arg) runs under the pool's lock (so the owner, checking locals_pool_idle, cannot free the pool
// before it returns); it must not call back into the pool.
void locals_pool_init (locals_pool_t *p, void (*on_idle) (void *arg), void *arg);
void locals_pool_destroy (locals_pool_t *p);

// A free item, now in use; NULL when there is none: make one, then call locals_pool_added (or
// locals_pool_abandon when that failed). The calling thread counts as in use from here on either way.
locals_pool_item_t *locals_pool_take (locals_pool_t *p);
void locals_pool_added (locals_pool_t *p);
void locals_pool_abandon (locals_pool_t *p);

// An exiting thread gives its item back. Runs on_idle when the pool is closed and this was the last one.
void locals_pool_put (locals_pool_t *p, locals_pool_item_t *item);

// The owner will take no more items (its workers are gone or going). Runs on_idle when none is in use.
void locals_pool_close (locals_pool_t *p);

// 1 when closed and no item is in use: no thread touches the pool or its items any more, except a
// thread still returning from locals_pool_put (its last access is the unlock this call waits for).
int locals_pool_idle (locals_pool_t *p);

void locals_pool_stats (locals_pool_t *p, locals_pool_stats_t *out);

#endif
