// Unit test of fair-queue.c (PATCHES.md 20), a plain C program in the same output format as
// render-cache-test.c, on a fake clock (nanoseconds from 0):
//   default:   serving order, charging and decay, flow lifetime, the flow cap
//   --hammer:  FUSE-like threads push and wait while a "main thread" pops and charges (for
//              ThreadSanitizer and AddressSanitizer), then every item is accounted for
//
// Build: cc -I.. fair-queue-test.c ../fair-queue.c -lpthread -lm (test/c-tests.mjs does it).

#include "../fair-queue.h"

#include <math.h>
#include <pthread.h>
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

#define MS 1000000ULL
#define S 1000000000ULL

typedef struct {
  int id;
  fair_queue_item_t item; // not first on purpose: found back with offsetof, as in fuse-native.c
} request_t;

static int id_of (fair_queue_item_t *item) {
  return item == NULL ? -1 : ((request_t *) ((char *) item - offsetof(request_t, item)))->id;
}

static int near (double got, double want) {
  return fabs(got - want) <= want * 1e-9 + 1e-6;
}

static void test_fifo_without_history (void) {
  fair_queue_t q;
  check(fair_queue_init(&q) == 0, "init");
  request_t r[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
  check(fair_queue_pop(&q, 0, NULL) == NULL, "empty: nothing to pop");
  check(fair_queue_push(&q, &r[0].item, 10, 0, 1) == 1, "push returns the number queued (1)");
  fair_queue_push(&q, &r[1].item, 20, 0, 2);
  check(fair_queue_push(&q, &r[2].item, 10, 0, 3) == 3, "push returns the number queued (3)");
  uint64_t key = 0;
  int a = id_of(fair_queue_pop(&q, 4, &key));
  check(a == 0 && key == 10, "keys with no time yet: the oldest first, with its key");
  int b = id_of(fair_queue_pop(&q, 4, &key));
  int c = id_of(fair_queue_pop(&q, 4, &key));
  check(b == 1 && c == 2 && key == 10, "then in arrival order");
  fair_queue_stats_t s;
  fair_queue_stats(&q, &s);
  check(s.queued == 0 && s.served == 3 && s.overtaken == 0, "stats: 3 served, none overtaken, none queued");
  fair_queue_destroy(&q);
}

static void test_light_then_least_recent (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  // Keys 7 and 8 read back to back lately (60 ms and 30 ms of the main thread: heavy); key 11 took 1 ms,
  // key 9 nothing yet (both light).
  fair_queue_charge(&q, 7, 0, 60 * MS, 0);
  fair_queue_charge(&q, 8, 0, 30 * MS, 0);
  fair_queue_charge(&q, 11, 0, 1 * MS, 0);
  request_t heavy7 = { .id = 7 }, heavy8 = { .id = 8 }, heavy7b = { .id = 70 }, light11 = { .id = 11 }, light9 = { .id = 9 };
  fair_queue_push(&q, &heavy7.item, 7, 0, 1);
  fair_queue_push(&q, &heavy8.item, 8, 0, 2);
  fair_queue_push(&q, &heavy7b.item, 7, 0, 3);
  fair_queue_push(&q, &light11.item, 11, 0, 4);
  fair_queue_push(&q, &light9.item, 9, 0, 5);
  int order[5];
  for (int i = 0; i < 5; i++) order[i] = id_of(fair_queue_pop(&q, 6, NULL));
  check(order[0] == 11 && order[1] == 9, "light keys first, in arrival order (not by their recent time), though they came last");
  check(order[2] == 8, "then the heavy key with less recent time");
  check(order[3] == 7 && order[4] == 70, "the busiest key last, its own requests in arrival order");
  fair_queue_stats_t s;
  fair_queue_stats(&q, &s);
  check(s.overtaken == 3 && s.served == 5, "stats: 3 of 5 pops overtook an older request");
  fair_queue_destroy(&q);
}

static void test_charge_and_decay (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  check(fair_queue_recent_ns(&q, 5, 0, 0) == 0, "an unknown key has no recent time");
  fair_queue_charge(&q, 5, 0, 8 * MS, 0);
  check(near(fair_queue_recent_ns(&q, 5, 0, 0), 8 * MS), "a charge adds its cost");
  check(near(fair_queue_recent_ns(&q, 5, 0, FAIR_QUEUE_HALF_LIFE_NS), 4 * MS), "one half-life later: half");
  check(near(fair_queue_recent_ns(&q, 5, 0, 3 * FAIR_QUEUE_HALF_LIFE_NS), 1 * MS), "three half-lives: an eighth");
  fair_queue_charge(&q, 5, 0, 1 * MS, 3 * FAIR_QUEUE_HALF_LIFE_NS);
  check(near(fair_queue_recent_ns(&q, 5, 0, 3 * FAIR_QUEUE_HALF_LIFE_NS), 2 * MS), "a later charge adds to the decayed time");
  check(near(fair_queue_recent_ns(&q, 5, 0, 2 * FAIR_QUEUE_HALF_LIFE_NS), 2 * MS), "a clock read from before the last stamp changes nothing");

  // A key busy in the past is light again once it has been quiet long enough: 320 ms four half-lives ago is
  // 20 ms now, under FAIR_QUEUE_LIGHT_NS, while 60 ms charged just now is heavy.
  fair_queue_charge(&q, 1, 0, 320 * MS, 10 * S);
  fair_queue_charge(&q, 2, 0, 60 * MS, 10 * S + 4 * FAIR_QUEUE_HALF_LIFE_NS);
  request_t r1 = { .id = 1 }, r2 = { .id = 2 };
  uint64_t now = 10 * S + 4 * FAIR_QUEUE_HALF_LIFE_NS;
  fair_queue_push(&q, &r2.item, 2, 0, now);
  fair_queue_push(&q, &r1.item, 1, 0, now);
  check(id_of(fair_queue_pop(&q, now, NULL)) == 1, "a once-busy key that went quiet is light again: served before a busy one");
  check(id_of(fair_queue_pop(&q, now, NULL)) == 2, "and the other after it");
  fair_queue_destroy(&q);
}

static void test_urgent (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  // Key 7 took 300 ms lately (back-to-back renders), key 8 nothing. Key 7's lookup still goes first: the
  // kernel holds the directory's lock while it waits.
  fair_queue_charge(&q, 7, 0, 300 * MS, 0);
  request_t open8 = { .id = 1 }, lookup7 = { .id = 2 }, open7 = { .id = 3 }, lookup8 = { .id = 4 };
  fair_queue_push(&q, &open8.item, 8, 0, 1);
  fair_queue_push(&q, &open7.item, 7, 0, 2);
  fair_queue_push(&q, &lookup7.item, 7, 1, 3);
  fair_queue_push(&q, &lookup8.item, 8, 1, 4);
  int order[4];
  for (int i = 0; i < 4; i++) order[i] = id_of(fair_queue_pop(&q, 5, NULL));
  check(order[0] == 2 && order[1] == 4, "urgent requests first, oldest first, whatever their key's recent time");
  check(order[2] == 1 && order[3] == 3, "then the others by recent time");
  check(fair_queue_recent_ns(&q, 7, 1, 5) == 0, "renders are not urgent time");

  // Key 9 floods lookups: once its urgent time passes the cap they queue by recent time like the rest.
  fair_queue_charge(&q, 9, 1, 2 * FAIR_QUEUE_URGENT_CAP_NS, 10);
  check(near(fair_queue_recent_ns(&q, 9, 1, 10), 2 * FAIR_QUEUE_URGENT_CAP_NS) && near(fair_queue_recent_ns(&q, 9, 0, 10), 2 * FAIR_QUEUE_URGENT_CAP_NS), "urgent time counts in both totals");
  fair_queue_charge(&q, 10, 0, 1 * MS, 10);
  request_t flood = { .id = 9 }, other = { .id = 10 };
  fair_queue_push(&q, &flood.item, 9, 1, 11);
  fair_queue_push(&q, &other.item, 10, 0, 12);
  check(id_of(fair_queue_pop(&q, 13, NULL)) == 10, "a key at the urgent cap: its lookup waits behind a lighter key's open");
  check(id_of(fair_queue_pop(&q, 13, NULL)) == 9, "and is served after it");
  // Two half-lives later it is under the cap again (twice the cap, quartered).
  uint64_t later = 15 + 2 * FAIR_QUEUE_HALF_LIFE_NS;
  fair_queue_push(&q, &other.item, 10, 0, later - 2);
  fair_queue_push(&q, &flood.item, 9, 1, later - 1);
  check(id_of(fair_queue_pop(&q, later, NULL)) == 9, "once its urgent time decays under the cap, urgent again");
  fair_queue_pop(&q, later, NULL);
  fair_queue_destroy(&q);
}

static void test_max_wait (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  // 60 namespaces flood lookups together, each under the urgent cap: without a bound on waiting, urgent
  // requests would always be there and an open would never be served.
  enum { K = 60 };
  request_t lookups[K], open1 = { .id = 1000 }, heavy = { .id = 2000 };
  fair_queue_charge(&q, 99, 0, 500 * MS, 0); // key 99 is heavy
  fair_queue_push(&q, &open1.item, 7, 0, 0);
  fair_queue_push(&q, &heavy.item, 99, 0, 0);
  for (int i = 0; i < K; i++) {
    lookups[i].id = i;
    fair_queue_push(&q, &lookups[i].item, 100 + (uint64_t) i, 1, 0);
  }
  // Serve lookups (each re-queued at once, as a flooding reader does) until the open comes out.
  uint64_t now = 0, open_at = 0, heavy_at = 0;
  for (int n = 0; n < 100000 && (open_at == 0 || heavy_at == 0); n++) {
    now += 30000; // 30 µs a request
    uint64_t key = 0;
    fair_queue_item_t *it = fair_queue_pop(&q, now, &key);
    int id = id_of(it);
    if (id == 1000) open_at = now;
    else if (id == 2000) heavy_at = now;
    else if (id >= 0 && id < K) {
      fair_queue_charge(&q, key, 1, 30000, now);
      fair_queue_push(&q, it, key, 1, now);
    }
  }
  check(open_at >= FAIR_QUEUE_MAX_WAIT_NS && open_at < FAIR_QUEUE_MAX_WAIT_NS + MS, "an open behind a flood of lookups from 60 namespaces is served once it has waited FAIR_QUEUE_MAX_WAIT_NS");
  check(heavy_at > open_at && heavy_at < FAIR_QUEUE_MAX_WAIT_NS + MS, "and so is a heavy key's request, oldest first");
  for (int n = 0; n < K; n++) fair_queue_pop(&q, now, NULL);

  // configure: another half-life and longest wait.
  fair_queue_configure(&q, 10 * S, 20 * S);
  fair_queue_charge(&q, 5, 0, 8 * MS, now);
  check(near(fair_queue_recent_ns(&q, 5, 0, now + 10 * S), 4 * MS), "configure: the half-life");
  request_t a = { .id = 1 }, b = { .id = 2 };
  fair_queue_push(&q, &a.item, 5, 0, now);
  fair_queue_push(&q, &b.item, 6, 1, now + 1);
  check(id_of(fair_queue_pop(&q, now + 19 * S, NULL)) == 2, "configure: the longest wait (19 s is not 20: the urgent one first)");
  check(id_of(fair_queue_pop(&q, now + 19 * S, NULL)) == 1, "then the other");
  fair_queue_destroy(&q);
}

static void test_close (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  request_t r[3] = { { .id = 0 }, { .id = 1 }, { .id = 2 } };
  fair_queue_push(&q, &r[0].item, 1, 0, 1);
  fair_queue_push(&q, &r[1].item, 2, 1, 2);
  fair_queue_close(&q);
  fair_queue_stats_t s;
  fair_queue_stats(&q, &s);
  check(s.queued == 0 && fair_queue_pop(&q, 3, NULL) == NULL, "close unlinks what waits");
  check(fair_queue_push(&q, &r[2].item, 1, 0, 4) == 0 && fair_queue_pop(&q, 5, NULL) == NULL, "a push after close is refused (0)");
  // An owner answered at close may push the same item again: refused, so the list cannot loop.
  check(fair_queue_push(&q, &r[0].item, 1, 0, 6) == 0 && fair_queue_push(&q, &r[0].item, 1, 0, 7) == 0, "the same item pushed twice after close: refused both times");
  check(fair_queue_sweep(&q, 10 * S) == 0, "no flow keeps a waiting count after close: all swept when idle");
  fair_queue_destroy(&q);
}

static void test_flow_lifetime (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  request_t r = { .id = 1 };
  fair_queue_push(&q, &r.item, 100, 0, 0);
  fair_queue_charge(&q, 200, 0, 5 * MS, 0);
  check(fair_queue_sweep(&q, 0) == 2, "two keys in use: two flows");
  // Key 100's request waits a long time (a slow render of someone else): its flow stays.
  check(fair_queue_sweep(&q, FAIR_QUEUE_IDLE_NS) == 1, "idle for FAIR_QUEUE_IDLE_NS with nothing waiting: dropped; waiting: kept");
  check(fair_queue_recent_ns(&q, 200, 0, FAIR_QUEUE_IDLE_NS) == 0, "the dropped key has no recent time left");
  uint64_t key = 0;
  check(id_of(fair_queue_pop(&q, FAIR_QUEUE_IDLE_NS + 1, &key)) == 1 && key == 100, "the waiting request is still served");
  fair_queue_charge(&q, key, 0, 1 * MS, FAIR_QUEUE_IDLE_NS + 2);
  check(fair_queue_sweep(&q, FAIR_QUEUE_IDLE_NS + 1 + FAIR_QUEUE_IDLE_NS) == 1, "idle just short of the limit after its charge: kept");
  check(fair_queue_sweep(&q, FAIR_QUEUE_IDLE_NS + 2 + FAIR_QUEUE_IDLE_NS) == 0, "idle for the limit: dropped; no flow left");

  // Pushes and pops sweep by themselves, at most once per FAIR_QUEUE_SWEEP_NS.
  uint64_t t = 100 * S;
  for (uint64_t k = 1; k <= 50; k++) fair_queue_charge(&q, 1000 + k, 0, 1 * MS, t);
  fair_queue_stats_t s;
  fair_queue_stats(&q, &s);
  check(s.flows == 50, "50 containers read: 50 flows");
  request_t late = { .id = 2 };
  fair_queue_push(&q, &late.item, 1, 0, t + FAIR_QUEUE_IDLE_NS + FAIR_QUEUE_SWEEP_NS);
  fair_queue_stats(&q, &s);
  check(s.flows == 1, "a push after they went idle sweeps them: only the pusher's flow is left");
  fair_queue_pop(&q, t + FAIR_QUEUE_IDLE_NS + FAIR_QUEUE_SWEEP_NS, NULL);
  fair_queue_destroy(&q);
}

static void test_flow_cap (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  for (uint64_t k = 1; k <= FAIR_QUEUE_MAX_FLOWS; k++) fair_queue_charge(&q, k, 0, 1 * MS, 0);
  fair_queue_stats_t s;
  fair_queue_stats(&q, &s);
  check(s.flows == FAIR_QUEUE_MAX_FLOWS, "flows up to the cap");
  fair_queue_charge(&q, 1, 0, 100 * MS, 0); // key 1 is now heavy
  request_t over = { .id = 1 }, busy = { .id = 2 };
  fair_queue_push(&q, &busy.item, 1, 0, 1);
  fair_queue_push(&q, &over.item, FAIR_QUEUE_MAX_FLOWS + 1, 0, 1);
  fair_queue_stats(&q, &s);
  check(s.flows == FAIR_QUEUE_MAX_FLOWS && s.queued == 2, "a key past the cap gets no flow, but is queued");
  check(id_of(fair_queue_pop(&q, 2, NULL)) == 1, "and is served as a key with no recent time");
  check(id_of(fair_queue_pop(&q, 2, NULL)) == 2, "then the rest");
  // Once the old flows are idle, a new key gets a flow again.
  fair_queue_push(&q, &over.item, FAIR_QUEUE_MAX_FLOWS + 1, 0, FAIR_QUEUE_IDLE_NS + 3);
  fair_queue_stats(&q, &s);
  check(s.flows == 1, "after the idle limit the old flows are swept and the new key has one");
  fair_queue_pop(&q, FAIR_QUEUE_IDLE_NS + 3, NULL);
  fair_queue_destroy(&q);
}

// --hammer: 8 threads, each with one request at a time (as a FUSE thread), push under one of 4 keys and
// wait on their own semaphore; one thread pops, charges by key and posts.
#define HAMMER_THREADS 8
#define HAMMER_ROUNDS 20000

typedef struct {
  request_t r;
  sem_t done;
  uint64_t key;
  fair_queue_t *q;
} worker_t;

static atomic_uint_fast64_t clock_ns;
static atomic_int workers_left;

static void *worker (void *arg) {
  worker_t *w = (worker_t *) arg;
  for (int i = 0; i < HAMMER_ROUNDS; i++) {
    fair_queue_push(w->q, &(w->r.item), w->key, i % 3 == 0, atomic_fetch_add(&clock_ns, 1000));
    sem_wait(&(w->done));
  }
  atomic_fetch_sub(&workers_left, 1);
  return NULL;
}

static void hammer (void) {
  fair_queue_t q;
  fair_queue_init(&q);
  worker_t w[HAMMER_THREADS];
  pthread_t t[HAMMER_THREADS];
  atomic_store(&workers_left, HAMMER_THREADS);
  for (int i = 0; i < HAMMER_THREADS; i++) {
    w[i].r.id = i;
    w[i].key = (uint64_t) (i % 4);
    w[i].q = &q;
    sem_init(&(w[i].done), 0, 0);
    pthread_create(&t[i], NULL, worker, &w[i]);
  }
  uint64_t served = 0, wrong_key = 0;
  while (atomic_load(&workers_left) > 0 || served < (uint64_t) HAMMER_THREADS * HAMMER_ROUNDS) {
    uint64_t key = 99;
    uint64_t now = atomic_fetch_add(&clock_ns, 1000);
    fair_queue_item_t *item = fair_queue_pop(&q, now, &key);
    if (item == NULL) continue;
    int id = id_of(item);
    fair_queue_charge(&q, key, item->urgent, 500 * (key + 1), now + 10);
    served++;
    if (key != w[id].key) wrong_key++;
    sem_post(&(w[id].done));
  }
  for (int i = 0; i < HAMMER_THREADS; i++) pthread_join(t[i], NULL);
  fair_queue_stats_t s;
  fair_queue_stats(&q, &s);
  check(served == (uint64_t) HAMMER_THREADS * HAMMER_ROUNDS && s.served == served && s.queued == 0, "hammer: every request served once, nothing left queued");
  check(wrong_key == 0, "hammer: every pop named the key its request was pushed under");
  for (int i = 0; i < HAMMER_THREADS; i++) sem_destroy(&(w[i].done));
  fair_queue_destroy(&q);
}

int main (int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--hammer") == 0) {
    hammer();
  } else {
    test_fifo_without_history();
    test_light_then_least_recent();
    test_charge_and_decay();
    test_urgent();
    test_max_wait();
    test_close();
    test_flow_lifetime();
    test_flow_cap();
  }
  printf("1..%d\n", checks);
  return failures == 0 ? 0 : 1;
}
