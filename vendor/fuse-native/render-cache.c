// lxcfs-ts: the render cache (see render-cache.h, PATCHES.md 11 and 16).

#include "render-cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RENDER_CACHE_BUCKETS 256

typedef struct render_cache_entry {
  struct render_cache_entry *next;
  uint64_t ns;
  int ns_fd;
  uint64_t expires;
  char *path;
  size_t len;
  char data[];
} render_cache_entry_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
// Guarded by cache_lock:
static render_cache_entry_t *buckets[RENDER_CACHE_BUCKETS];
static uint32_t count = 0;
static size_t bytes = 0;
static uint64_t hits = 0;
static uint64_t misses = 0;
static uint64_t next_sweep = 0;
// Written under cache_lock, read anywhere:
static _Atomic uint64_t ttl_ns = 0;
static _Atomic uint64_t own_ns = 0;

uint64_t render_cache_ttl_ns (void) {
  return atomic_load_explicit(&ttl_ns, memory_order_relaxed);
}

uint64_t render_cache_own_ns (void) {
  return atomic_load_explicit(&own_ns, memory_order_relaxed);
}

static uint32_t bucket_of (const char *path, uint64_t ns) {
  uint64_t h = ns * 0x9E3779B97F4A7C15ULL;
  for (const unsigned char *c = (const unsigned char *) path; *c; c++) h = (h ^ *c) * 0x100000001B3ULL;
  return (uint32_t) (h % RENDER_CACHE_BUCKETS);
}

static void entry_free (render_cache_entry_t *e) {
  if (e->ns_fd >= 0) close(e->ns_fd);
  free(e->path);
  free(e);
}

// Takes a listed entry out of the counts and frees it (its link is the caller's to undo). Lock held.
static void drop (render_cache_entry_t *e) {
  count--;
  bytes -= e->len;
  entry_free(e);
}

// Drops expired entries (every entry with force). Lock held.
static void sweep_locked (uint64_t now, int force) {
  for (int b = 0; b < RENDER_CACHE_BUCKETS; b++) {
    render_cache_entry_t **link = &buckets[b];
    while (*link != NULL) {
      render_cache_entry_t *e = *link;
      if (force || e->expires <= now) {
        *link = e->next;
        drop(e);
      } else {
        link = &e->next;
      }
    }
  }
  next_sweep = now + render_cache_ttl_ns();
}

static void stats_locked (render_cache_stats_t *out) {
  out->entries = count;
  out->bytes = bytes;
  out->hits = hits;
  out->misses = misses;
}

void render_cache_configure (uint64_t ttl, uint64_t own, render_cache_stats_t *before) {
  pthread_mutex_lock(&cache_lock);
  if (before != NULL) stats_locked(before);
  atomic_store_explicit(&ttl_ns, 0, memory_order_relaxed);
  sweep_locked(0, 1);
  atomic_store_explicit(&own_ns, own, memory_order_relaxed);
  atomic_store_explicit(&ttl_ns, ttl, memory_order_relaxed);
  next_sweep = 0;
  pthread_mutex_unlock(&cache_lock);
}

char *render_cache_lookup (const char *path, uint64_t ns, uint64_t now, size_t *len_out) {
  char *copy = NULL;
  pthread_mutex_lock(&cache_lock);
  if (now >= next_sweep) sweep_locked(now, 0);
  for (render_cache_entry_t *e = buckets[bucket_of(path, ns)]; e != NULL; e = e->next) {
    if (e->ns != ns || e->expires <= now || strcmp(e->path, path) != 0) continue;
    copy = malloc(e->len > 0 ? e->len : 1); // malloc(0) may return NULL
    if (copy != NULL) {
      if (e->len > 0) memcpy(copy, e->data, e->len);
      *len_out = e->len;
    }
    break;
  }
  if (copy != NULL) hits++;
  else misses++;
  pthread_mutex_unlock(&cache_lock);
  return copy;
}

int render_cache_store (const char *path, uint64_t ns, int ns_fd, const char *data, size_t len, uint64_t now) {
  uint64_t ttl = render_cache_ttl_ns();
  render_cache_entry_t *e = NULL;
  char *p = NULL;
  if (ttl == 0 || ns == 0 || len > RENDER_CACHE_MAX_BYTES ||
      (e = malloc(sizeof(render_cache_entry_t) + len)) == NULL || (p = strdup(path)) == NULL) {
    free(e);
    if (ns_fd >= 0) close(ns_fd);
    return 0;
  }
  e->ns = ns;
  e->ns_fd = ns_fd;
  e->expires = now + ttl;
  e->path = p;
  e->len = len;
  if (len > 0) memcpy(e->data, data, len); // data may be NULL when len is 0 (an empty Buffer)
  uint32_t b = bucket_of(path, ns);
  pthread_mutex_lock(&cache_lock);
  if (now >= next_sweep) sweep_locked(now, 0);
  // A newer rendering replaces the older one for the same key.
  for (render_cache_entry_t **link = &buckets[b]; *link != NULL; link = &(*link)->next) {
    render_cache_entry_t *old = *link;
    if (old->ns == ns && strcmp(old->path, path) == 0) {
      *link = old->next;
      drop(old);
      break;
    }
  }
  // A configure between the ttl read above and here emptied the cache and may have turned it off.
  int stored = render_cache_ttl_ns() != 0 && count < RENDER_CACHE_MAX && bytes + len <= RENDER_CACHE_MAX_BYTES;
  if (stored) {
    e->next = buckets[b];
    buckets[b] = e;
    count++;
    bytes += len;
  }
  pthread_mutex_unlock(&cache_lock);
  if (!stored) entry_free(e);
  return stored;
}

uint32_t render_cache_sweep (uint64_t now) {
  pthread_mutex_lock(&cache_lock);
  sweep_locked(now, 0);
  uint32_t left = count;
  pthread_mutex_unlock(&cache_lock);
  return left;
}

void render_cache_stats (render_cache_stats_t *out) {
  pthread_mutex_lock(&cache_lock);
  stats_locked(out);
  pthread_mutex_unlock(&cache_lock);
}
