// lxcfs-ts: the fair hand-off from FUSE threads to JavaScript (PATCHES.md 20).
//
// Every request that needs JS waits in one queue per mount. Each waiting request carries a key, the inode of
// its caller's pid namespace (one key per container; all host processes share the daemon's own), and the
// queue remembers, per key, how much main-thread time the key's requests took lately (nanoseconds, halved
// every FAIR_QUEUE_HALF_LIFE_NS). Keys under FAIR_QUEUE_LIGHT_NS of recent time (a monitoring agent, top,
// a JVM starting: a few renders a second) are served in arrival order; keys above it (a loop reading as fast
// as it is answered) only when no lighter request waits, the least recent first. So a container that reads
// back to back waits behind everyone who reads less, instead of everyone queueing behind it (a FIFO serves
// it once per round trip, whatever each render costs), while ordinary containers keep their arrival order
// (ranking them all by recent time would make each one's later reads of a burst wait for everyone's first).
//
// Urgent requests (lookups and getattrs: cheap, and the kernel holds the directory's lock while one waits, so
// every container's lookup in that directory waits with it) go before all others, oldest first, as long as
// their key's recent urgent time stays under FAIR_QUEUE_URGENT_CAP_NS; a key that floods them (a loop of
// stat() on names that do not exist) loses the privilege and queues by its recent time like anyone else.
//
// Whatever its class, a request that has waited FAIR_QUEUE_MAX_WAIT_NS goes before all that have not,
// oldest first: no class can starve the others (many namespaces each under the urgent cap, flooding lookups
// together; a light load that never leaves a gap for a heavy key).
//
// Per-key state ("flows") lives while the key has requests waiting and for FAIR_QUEUE_IDLE_NS after its last
// request or charge, then is dropped by a sweep (run at most once per FAIR_QUEUE_SWEEP_NS from push and
// pop, and by fair_queue_sweep). It holds no descriptor, only a number: a namespace inode reused by a new
// container inherits at most what little was left of the old one's time.
//
// Knows nothing of FUSE, libuv or N-API, and takes the time as an argument, so test/fair-queue-test.c drives
// it with a fake clock. Thread safety: every function may be called from any thread (one mutex). Once
// closed (fair_queue_close: the process is exiting) it holds nothing and takes nothing.

#ifndef LXCFS_TS_FAIR_QUEUE_H
#define LXCFS_TS_FAIR_QUEUE_H

#include <pthread.h>
#include <stdint.h>

#define FAIR_QUEUE_HALF_LIFE_NS 500000000ULL  // default: a key's recent time halves every 0.5 s
#define FAIR_QUEUE_MAX_WAIT_NS 100000000ULL   // default: a request waiting 100 ms goes first
#define FAIR_QUEUE_IDLE_NS 5000000000ULL      // a flow with nothing waiting is dropped after 5 s idle
#define FAIR_QUEUE_SWEEP_NS 1000000000ULL     // at most one sweep a second from push or pop
#define FAIR_QUEUE_MAX_FLOWS 65536            // live flows; past it a new key is served unaccounted
#define FAIR_QUEUE_LIGHT_NS 25000000ULL      // recent time (25 ms, ~3.5 % of the main thread) up to which a key is light
#define FAIR_QUEUE_URGENT_CAP_NS 20000000ULL // recent urgent time (20 ms) above which a key's urgent requests wait their turn
#define FAIR_QUEUE_BUCKETS 256

typedef struct fair_flow fair_flow_t;

// Embed one in the queued struct; the queue never allocates or frees items.
typedef struct fair_queue_item {
  struct fair_queue_item *next; // arrival order
  fair_flow_t *flow;            // NULL when served unaccounted
  uint64_t key;
  uint64_t queued_at;
  int urgent;
} fair_queue_item_t;

struct fair_flow {
  uint64_t key;
  double recent_ns;  // main-thread time, decayed to `stamp`
  double urgent_ns;  // the part of it spent on urgent requests, decayed alike
  uint64_t stamp;    // when recent_ns was last decayed
  uint64_t last_use; // last push or charge
  uint32_t waiting;  // items queued
  fair_flow_t *next_in_bucket;
};

typedef struct {
  pthread_mutex_t mu;
  uint64_t half_life_ns;
  uint64_t max_wait_ns;
  int closed;
  fair_queue_item_t *head;
  fair_queue_item_t *tail;
  uint32_t queued;
  uint32_t flows;
  uint64_t next_sweep;
  uint64_t served;     // items popped, since init
  uint64_t overtaken;  // pops that served an item other than the oldest one
  fair_flow_t *buckets[FAIR_QUEUE_BUCKETS];
} fair_queue_t;

typedef struct {
  uint32_t queued;
  uint32_t flows;
  uint64_t served;
  uint64_t overtaken;
} fair_queue_stats_t;

// 0, or an errno from pthread_mutex_init. Default half-life and longest wait (FAIR_QUEUE_HALF_LIFE_NS,
// FAIR_QUEUE_MAX_WAIT_NS).
int fair_queue_init (fair_queue_t *q);

// Other half-life and longest wait (ns, each > 0; 0 keeps the current one). For tests that must not depend
// on how long their steps take.
void fair_queue_configure (fair_queue_t *q, uint64_t half_life_ns, uint64_t max_wait_ns);

// Unlinks every waiting item (their owners answer them otherwise) and refuses every later push.
void fair_queue_close (fair_queue_t *q);
// Frees every flow. Nothing may be queued or use q any more.
void fair_queue_destroy (fair_queue_t *q);

// Queues item under key at time now, urgent (1) or not (0). Returns the number queued after it, or 0 when
// the queue is closed (the item is not queued).
uint32_t fair_queue_push (fair_queue_t *q, fair_queue_item_t *item, uint64_t key, int urgent, uint64_t now);

// The next item to serve at time now, or NULL when none waits: the oldest that has waited max_wait, else the
// oldest urgent one of a key under the urgent cap, else the oldest of a light key, else the oldest of the
// key with the least recent time.
// *key_out (may be NULL) gets its key for fair_queue_charge.
fair_queue_item_t *fair_queue_pop (fair_queue_t *q, uint64_t now, uint64_t *key_out);

// Adds cost_ns of main-thread time, spent at time now on an urgent (1) or other (0) request, to key.
void fair_queue_charge (fair_queue_t *q, uint64_t key, int urgent, uint64_t cost_ns, uint64_t now);

// Drops flows idle at now (nothing waiting, no push or charge for FAIR_QUEUE_IDLE_NS); returns how many remain.
uint32_t fair_queue_sweep (fair_queue_t *q, uint64_t now);

// The recent time of key at now (0 when it has no flow), all of it or (urgent = 1) its urgent part; for tests.
double fair_queue_recent_ns (fair_queue_t *q, uint64_t key, int urgent, uint64_t now);

void fair_queue_stats (fair_queue_t *q, fair_queue_stats_t *out);

#endif
