// lxcfs-ts: the free list of per-thread state (see locals-pool.h, PATCHES.md 2 and 15).

#include "locals-pool.h"

#include <string.h>

void locals_pool_init (locals_pool_t *p, void (*on_idle) (void *arg), void *arg) {
  pthread_mutex_init(&p->lock, NULL);
  p->free = NULL;
  memset(&p->stats, 0, sizeof(p->stats));
  p->on_idle = on_idle;
  p->idle_arg = arg;
}

void locals_pool_destroy (locals_pool_t *p) {
  pthread_mutex_destroy(&p->lock);
}

static void took (locals_pool_t *p) {
  p->stats.threads++;
  p->stats.in_use++;
  if (p->stats.in_use > p->stats.peak) p->stats.peak = p->stats.in_use;
}

// A thread that finds no free item counts as in use from then on, while it makes one: so whenever an
// item is made, every item already made is held by a thread, and made items never outnumber the peak.
locals_pool_item_t *locals_pool_take (locals_pool_t *p) {
  pthread_mutex_lock(&p->lock);
  locals_pool_item_t *item = p->free;
  if (item != NULL) {
    p->free = item->next_free;
    item->next_free = NULL;
    p->stats.reused++;
  }
  took(p);
  pthread_mutex_unlock(&p->lock);
  return item;
}

void locals_pool_added (locals_pool_t *p) {
  pthread_mutex_lock(&p->lock);
  p->stats.created++;
  pthread_mutex_unlock(&p->lock);
}

static void idle_check (locals_pool_t *p) {
  if (p->stats.closed && p->stats.in_use == 0 && p->on_idle != NULL) p->on_idle(p->idle_arg);
}

void locals_pool_abandon (locals_pool_t *p) {
  pthread_mutex_lock(&p->lock);
  p->stats.threads--;
  p->stats.in_use--;
  idle_check(p);
  pthread_mutex_unlock(&p->lock);
}

void locals_pool_put (locals_pool_t *p, locals_pool_item_t *item) {
  pthread_mutex_lock(&p->lock);
  item->next_free = p->free;
  p->free = item;
  p->stats.returned++;
  p->stats.in_use--;
  idle_check(p);
  pthread_mutex_unlock(&p->lock);
}

void locals_pool_close (locals_pool_t *p) {
  pthread_mutex_lock(&p->lock);
  p->stats.closed = 1;
  idle_check(p);
  pthread_mutex_unlock(&p->lock);
}

int locals_pool_idle (locals_pool_t *p) {
  pthread_mutex_lock(&p->lock);
  int idle = p->stats.closed && p->stats.in_use == 0;
  pthread_mutex_unlock(&p->lock);
  return idle;
}

void locals_pool_stats (locals_pool_t *p, locals_pool_stats_t *out) {
  pthread_mutex_lock(&p->lock);
  *out = p->stats;
  pthread_mutex_unlock(&p->lock);
}
