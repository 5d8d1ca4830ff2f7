// lxcfs-ts: the fair hand-off queue (PATCHES.md 20); see fair-queue.h.

#include "fair-queue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t bucket_of (uint64_t key) {
  // namespace inodes are sequential: mix the bits so neighbours spread over the buckets
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  return (uint32_t) (key % FAIR_QUEUE_BUCKETS);
}

// Brings f's recent time to now (never backwards: a clock read before a later stamp changes nothing).
static void decay (const fair_queue_t *q, fair_flow_t *f, uint64_t now) {
  if (now <= f->stamp) return;
  double factor = exp2(-(double) (now - f->stamp) / (double) q->half_life_ns);
  f->recent_ns *= factor;
  f->urgent_ns *= factor;
  f->stamp = now;
}

static fair_flow_t *find (fair_queue_t *q, uint64_t key) {
  for (fair_flow_t *f = q->buckets[bucket_of(key)]; f != NULL; f = f->next_in_bucket) {
    if (f->key == key) return f;
  }
  return NULL;
}

static uint32_t sweep_locked (fair_queue_t *q, uint64_t now) {
  for (uint32_t b = 0; b < FAIR_QUEUE_BUCKETS; b++) {
    fair_flow_t **link = &(q->buckets[b]);
    while (*link != NULL) {
      fair_flow_t *f = *link;
      if (f->waiting == 0 && now >= f->last_use && now - f->last_use >= FAIR_QUEUE_IDLE_NS) {
        *link = f->next_in_bucket;
        free(f);
        q->flows--;
      } else {
        link = &(f->next_in_bucket);
      }
    }
  }
  q->next_sweep = now + FAIR_QUEUE_SWEEP_NS;
  return q->flows;
}

static void maybe_sweep (fair_queue_t *q, uint64_t now) {
  if (now >= q->next_sweep) sweep_locked(q, now);
}

// The flow of key, made when missing; NULL past FAIR_QUEUE_MAX_FLOWS live flows or without memory (the item
// is then served as a key with no recent time, as a new container's first request is).
static fair_flow_t *flow_of (fair_queue_t *q, uint64_t key, uint64_t now) {
  fair_flow_t *f = find(q, key);
  if (f != NULL) return f;
  if (q->flows >= FAIR_QUEUE_MAX_FLOWS) return NULL; // until the next due sweep (push and pop run it) frees some
  f = calloc(1, sizeof(fair_flow_t));
  if (f == NULL) return NULL;
  f->key = key;
  f->stamp = now;
  f->last_use = now;
  uint32_t b = bucket_of(key);
  f->next_in_bucket = q->buckets[b];
  q->buckets[b] = f;
  q->flows++;
  return f;
}

int fair_queue_init (fair_queue_t *q) {
  memset(q, 0, sizeof(*q));
  q->half_life_ns = FAIR_QUEUE_HALF_LIFE_NS;
  q->max_wait_ns = FAIR_QUEUE_MAX_WAIT_NS;
  return pthread_mutex_init(&(q->mu), NULL);
}

void fair_queue_configure (fair_queue_t *q, uint64_t half_life_ns, uint64_t max_wait_ns) {
  pthread_mutex_lock(&(q->mu));
  if (half_life_ns > 0) q->half_life_ns = half_life_ns;
  if (max_wait_ns > 0) q->max_wait_ns = max_wait_ns;
  pthread_mutex_unlock(&(q->mu));
}

void fair_queue_close (fair_queue_t *q) {
  pthread_mutex_lock(&(q->mu));
  q->closed = 1;
  for (fair_queue_item_t *it = q->head; it != NULL; it = it->next) {
    if (it->flow != NULL) it->flow->waiting--;
  }
  q->head = q->tail = NULL;
  q->queued = 0;
  pthread_mutex_unlock(&(q->mu));
}

void fair_queue_destroy (fair_queue_t *q) {
  for (uint32_t b = 0; b < FAIR_QUEUE_BUCKETS; b++) {
    fair_flow_t *next;
    for (fair_flow_t *f = q->buckets[b]; f != NULL; f = next) {
      next = f->next_in_bucket;
      free(f);
    }
    q->buckets[b] = NULL;
  }
  q->flows = 0;
  pthread_mutex_destroy(&(q->mu));
}

uint32_t fair_queue_push (fair_queue_t *q, fair_queue_item_t *item, uint64_t key, int urgent, uint64_t now) {
  pthread_mutex_lock(&(q->mu));
  if (q->closed) {
    pthread_mutex_unlock(&(q->mu));
    return 0;
  }
  maybe_sweep(q, now);
  fair_flow_t *f = flow_of(q, key, now);
  item->flow = f;
  item->key = key;
  item->queued_at = now;
  item->urgent = urgent;
  item->next = NULL;
  if (f != NULL) {
    f->waiting++;
    if (now > f->last_use) f->last_use = now;
  }
  if (q->tail != NULL) q->tail->next = item;
  else q->head = item;
  q->tail = item;
  uint32_t queued = ++q->queued;
  pthread_mutex_unlock(&(q->mu));
  return queued;
}

fair_queue_item_t *fair_queue_pop (fair_queue_t *q, uint64_t now, uint64_t *key_out) {
  pthread_mutex_lock(&(q->mu));
  fair_queue_item_t *best = NULL, *best_prev = NULL, *prev = NULL;
  double best_recent = 0;
  int best_class = 4;
  // Classes: 0 waited max_wait, 1 urgent under the cap, 2 light, 3 heavy. The lowest class wins; within 0,
  // 1 and 2 the oldest (the list is in arrival order, so the first seen), within 3 strictly less recent
  // time, then the oldest.
  // An unaccounted item counts as a key with no time. Each waiting item is a FUSE thread blocked on it, so
  // the list is as long as the busy threads, not the fleet: under overload, a thousand. The head is the
  // oldest item, so when it has waited max_wait it is the one to serve, without the scan (and its decay of
  // every waiting key): past saturation, where every pop is such a one, a pop costs O(1), not O(queued).
  fair_queue_item_t *first = q->head;
  if (first != NULL && now >= first->queued_at && now - first->queued_at >= q->max_wait_ns) {
    best = first;
    best_class = 0;
  }
  for (fair_queue_item_t *it = best == NULL ? q->head : NULL; it != NULL; prev = it, it = it->next) {
    double recent = 0, urgent_recent = 0;
    if (it->flow != NULL) {
      decay(q, it->flow, now);
      recent = it->flow->recent_ns;
      urgent_recent = it->flow->urgent_ns;
    }
    int cls = now >= it->queued_at && now - it->queued_at >= q->max_wait_ns ? 0
            : it->urgent && urgent_recent < (double) FAIR_QUEUE_URGENT_CAP_NS ? 1
            : recent < (double) FAIR_QUEUE_LIGHT_NS ? 2 : 3;
    if (cls < best_class || (cls == 3 && best_class == 3 && recent < best_recent)) {
      best = it;
      best_prev = prev;
      best_recent = recent;
      best_class = cls;
    }
  }
  if (best != NULL) {
    if (best != q->head) q->overtaken++;
    if (best_prev != NULL) best_prev->next = best->next;
    else q->head = best->next;
    if (q->tail == best) q->tail = best_prev;
    best->next = NULL;
    q->queued--;
    q->served++;
    if (best->flow != NULL) best->flow->waiting--;
    if (key_out != NULL) *key_out = best->key;
  }
  maybe_sweep(q, now);
  pthread_mutex_unlock(&(q->mu));
  return best;
}

void fair_queue_charge (fair_queue_t *q, uint64_t key, int urgent, uint64_t cost_ns, uint64_t now) {
  pthread_mutex_lock(&(q->mu));
  fair_flow_t *f = flow_of(q, key, now);
  if (f != NULL) {
    decay(q, f, now);
    f->recent_ns += (double) cost_ns;
    if (urgent) f->urgent_ns += (double) cost_ns;
    if (now > f->last_use) f->last_use = now;
  }
  pthread_mutex_unlock(&(q->mu));
}

uint32_t fair_queue_sweep (fair_queue_t *q, uint64_t now) {
  pthread_mutex_lock(&(q->mu));
  uint32_t left = sweep_locked(q, now);
  pthread_mutex_unlock(&(q->mu));
  return left;
}

double fair_queue_recent_ns (fair_queue_t *q, uint64_t key, int urgent, uint64_t now) {
  pthread_mutex_lock(&(q->mu));
  fair_flow_t *f = find(q, key);
  double recent = 0;
  if (f != NULL) {
    decay(q, f, now);
    recent = urgent ? f->urgent_ns : f->recent_ns;
  }
  pthread_mutex_unlock(&(q->mu));
  return recent;
}

void fair_queue_stats (fair_queue_t *q, fair_queue_stats_t *out) {
  pthread_mutex_lock(&(q->mu));
  out->queued = q->queued;
  out->flows = q->flows;
  out->served = q->served;
  out->overtaken = q->overtaken;
  pthread_mutex_unlock(&(q->mu));
}
