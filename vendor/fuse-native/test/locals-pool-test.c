// Unit test of locals-pool.c (PATCHES.md 2, 15), a plain C program in the same output format as
// render-cache-test.c. Threads use the pool as fuse-native.c's FUSE workers do: take an item (or make one),
// keep it in a pthread key, and give it back from the key's destructor when they exit.
//   default:   single-thread checks, then rounds of N concurrent threads with exact expected counters
//   --hammer:  detached threads (as libfuse's retiring workers are) come and go from several spawners
//              while the owner closes the pool, waits for on_idle and frees it (for ThreadSanitizer and
//              AddressSanitizer: any access to the pool after that is a report)
//
// Build: cc -I.. locals-pool-test.c ../locals-pool.c -lpthread (test/c-tests.mjs does it).

#include "../locals-pool.h"

#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;
static int failures = 0;

static void check (int ok, const char *what) {
  checks++;
  if (!ok) failures++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
  fflush(stdout);
}

typedef struct {
  locals_pool_item_t item; // not first on purpose: items are found back with offsetof, as in fuse-native.c
  locals_pool_t *pool;
  pthread_t owner;         // written by each thread that holds it: a race here is a pool bug
  uint64_t uses;
} locals_t;

static locals_t *locals_of (locals_pool_item_t *item) {
  return (locals_t *) ((char *) item - offsetof(locals_t, item));
}

static pthread_key_t key;

static void give_back (void *data) {
  locals_t *l = (locals_t *) data;
  locals_pool_put(l->pool, &l->item);
}

// What a FUSE worker does at its first request.
static locals_t *get_locals (locals_pool_t *pool, atomic_int *made) {
  locals_t *l = pthread_getspecific(key);
  if (l != NULL) return l;
  locals_pool_item_t *item = locals_pool_take(pool);
  if (item != NULL) {
    l = locals_of(item);
  } else {
    sched_yield(); // fuse-native.c makes them on the main thread: a wide window for others to come and go
    l = calloc(1, sizeof(locals_t));
    if (l == NULL) abort();
    l->pool = pool;
    if (made != NULL) atomic_fetch_add(made, 1);
    locals_pool_added(pool);
  }
  l->owner = pthread_self();
  l->uses++;
  pthread_setspecific(key, l);
  return l;
}

// Frees the items on a pool's free list (all of them, once no thread holds one).
static void free_items (locals_pool_t *pool) {
  locals_pool_item_t *next;
  for (locals_pool_item_t *item = pool->free; item != NULL; item = next) {
    next = item->next_free;
    free(locals_of(item));
  }
  pool->free = NULL;
}

static int idle_calls = 0; // written under the pool's lock
static void count_idle (void *arg) {
  idle_calls++;
}

static void test_single (void) {
  locals_pool_t pool;
  locals_pool_init(&pool, count_idle, NULL);
  locals_pool_stats_t s;
  check(locals_pool_take(&pool) == NULL, "an empty pool has nothing to take");
  locals_pool_abandon(&pool);
  locals_pool_stats(&pool, &s);
  check(s.in_use == 0 && s.threads == 0 && s.created == 0, "abandoned: as if never asked");
  locals_t a = { .pool = &pool };
  check(locals_pool_take(&pool) == NULL, "a thread finds none");
  locals_pool_added(&pool);
  locals_pool_stats(&pool, &s);
  check(s.created == 1 && s.in_use == 1 && s.peak == 1 && s.threads == 1 && s.reused == 0, "added: 1 made, in use");
  locals_pool_put(&pool, &a.item);
  locals_pool_stats(&pool, &s);
  check(s.returned == 1 && s.in_use == 0 && idle_calls == 0, "put back: not in use, no idle call while open");
  check(locals_pool_take(&pool) == &a.item, "the next take gets it back");
  locals_pool_stats(&pool, &s);
  check(s.reused == 1 && s.threads == 2 && s.created == 1 && s.in_use == 1, "counted as reused");
  check(locals_pool_take(&pool) == NULL, "and the pool is empty again");
  locals_pool_abandon(&pool);
  locals_pool_close(&pool);
  check(idle_calls == 0 && !locals_pool_idle(&pool), "closed with one in use: not idle");
  locals_pool_put(&pool, &a.item);
  check(idle_calls == 1 && locals_pool_idle(&pool), "the last put after close: idle, on_idle called once");
  locals_pool_destroy(&pool);

  locals_pool_init(&pool, count_idle, NULL);
  idle_calls = 0;
  locals_pool_close(&pool);
  check(idle_calls == 1 && locals_pool_idle(&pool), "closing a pool with nothing in use: idle at once");
  locals_pool_destroy(&pool);
}

// Rounds of n threads that all hold their locals at the same time, then exit; the next round starts once
// every thread of the last one has been joined (so its destructors have run).
typedef struct {
  locals_pool_t *pool;
  pthread_barrier_t *all_hold;
} round_arg_t;

static void *round_worker (void *data) {
  round_arg_t *arg = data;
  get_locals(arg->pool, NULL);
  pthread_barrier_wait(arg->all_hold);
  return NULL;
}

static void test_rounds (void) {
  static const int sizes[] = { 3, 16, 1, 8, 16, 12, 2, 16 };
  const int rounds = (int) (sizeof(sizes) / sizeof(sizes[0]));
  locals_pool_t pool;
  locals_pool_init(&pool, NULL, NULL);
  uint64_t threads = 0;
  int ok_peaks = 1;
  for (int r = 0; r < rounds; r++) {
    pthread_t t[16];
    pthread_barrier_t all_hold;
    pthread_barrier_init(&all_hold, NULL, (unsigned) sizes[r]);
    round_arg_t arg = { &pool, &all_hold };
    for (int i = 0; i < sizes[r]; i++) pthread_create(&t[i], NULL, round_worker, &arg);
    for (int i = 0; i < sizes[r]; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&all_hold);
    threads += (uint64_t) sizes[r];
    locals_pool_stats_t s;
    locals_pool_stats(&pool, &s);
    if (s.in_use != 0) ok_peaks = 0;
  }
  locals_pool_stats_t s;
  locals_pool_stats(&pool, &s);
  char what[160];
  check(ok_peaks, "after each round every exited thread gave its locals back");
  snprintf(what, sizeof(what), "%llu threads in rounds of at most 16 made 16 locals (made %u)", (unsigned long long) threads, s.created);
  check(s.created == 16 && s.peak == 16, what);
  check(s.threads == threads && s.reused == threads - 16 && s.returned == threads, "every other thread reused one");
  free_items(&pool);
  locals_pool_destroy(&pool);
}

// --hammer
#define SPAWNERS 4
#define WORKERS_PER_SPAWNER 400

typedef struct {
  locals_pool_t pool; // freed by the owner once idle
  sem_t idle;
  sem_t used;         // posted by each worker once it holds its locals (it gives them back as it exits)
  atomic_int made;
  atomic_int spawned;
} hammer_t;

static void hammer_idle (void *arg) {
  sem_post(&((hammer_t *) arg)->idle);
}

static void *hammer_worker (void *data) {
  hammer_t *h = data;
  locals_t *l = get_locals(&h->pool, &h->made);
  l->uses++; // a plain write: the pool must order it against the next holder's
  sem_post(&h->used);
  return NULL; // the key's destructor gives l back, possibly after the owner closed the pool
}

static void *spawner (void *data) {
  hammer_t *h = data;
  for (int i = 0; i < WORKERS_PER_SPAWNER; i++) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, hammer_worker, h) == 0) atomic_fetch_add(&h->spawned, 1);
    pthread_attr_destroy(&attr);
  }
  return NULL;
}

static void run_hammer (void) {
  hammer_t *h = calloc(1, sizeof(hammer_t));
  if (h == NULL) abort();
  locals_pool_init(&h->pool, hammer_idle, h);
  sem_init(&h->idle, 0, 0);
  sem_init(&h->used, 0, 0);
  pthread_t s[SPAWNERS];
  for (int i = 0; i < SPAWNERS; i++) pthread_create(&s[i], NULL, spawner, h);
  for (int i = 0; i < SPAWNERS; i++) pthread_join(s[i], NULL);
  for (int i = atomic_load(&h->spawned); i > 0; i--) sem_wait(&h->used);
  // Like the FUSE thread after fuse_loop_mt: no worker will take locals any more; some may still be
  // exiting, their locals not given back yet.
  locals_pool_close(&h->pool);
  sem_wait(&h->idle);
  int idle = locals_pool_idle(&h->pool); // waits for the last put's unlock
  locals_pool_stats_t st;
  locals_pool_stats(&h->pool, &st);
  int made = atomic_load(&h->made);
  check(idle && st.in_use == 0, "hammer: idle after close once every detached worker gave its locals back");
  check(st.threads == (uint64_t) atomic_load(&h->spawned) && st.returned == st.threads, "hammer: every worker took and gave back");
  check(st.created == (uint32_t) made && st.created <= st.peak, "hammer: locals made only when none was free");
  // Free what the workers touched, as fuse-native.c's teardown does; a late access would be a report.
  free_items(&h->pool);
  locals_pool_destroy(&h->pool);
  sem_destroy(&h->idle);
  sem_destroy(&h->used);
  free(h);
}

int main (int argc, char **argv) {
  pthread_key_create(&key, give_back);
  if (argc > 1 && strcmp(argv[1], "--hammer") == 0) {
    run_hammer();
  } else {
    test_single();
    test_rounds();
  }
  printf("1..%d\n", checks);
  return failures == 0 ? 0 : 1;
}
