// lxcfs-ts: the render cache (PATCHES.md 11 and 16), one per process, off until configured.
//
// Content that JS marked cacheable at open is kept per (path, pid namespace inode) for a fixed time, and a
// later open of that path from that namespace is answered from a copy of it. Each entry owns an open fd of
// its namespace: a live namespace keeps its inode number, so a key never matches a later namespace that
// reused the number. Knows nothing of FUSE or N-API (fuse-native.c decides who may be cached and makes
// the keys), and takes the time as an argument, so test/render-cache-test.c can drive it with a fake clock.
//
// Thread safety: every function may be called from any thread. The table and the counters are guarded by
// one mutex; the settings (time to live, own namespace) are C11 atomics, so the lock-free checks on the
// FUSE threads (render_cache_ttl_ns, render_cache_own_ns) never race with render_cache_configure.

#ifndef LXCFS_TS_RENDER_CACHE_H
#define LXCFS_TS_RENDER_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define RENDER_CACHE_MAX 1024                     // entries; each holds one fd
#define RENDER_CACHE_MAX_BYTES (16 * 1024 * 1024) // content bytes (cpuinfo of a big host is ~100 KiB)

typedef struct {
  uint32_t entries;
  size_t bytes;    // content bytes held
  uint64_t hits;   // lookups answered, since the process started
  uint64_t misses; // lookups not answered (no entry, expired, or out of memory)
} render_cache_stats_t;

// Sets the time to live (ns; 0 turns the cache off) and the caller's own pid namespace (never cached),
// after dropping every entry (hits and misses keep counting). before (may be NULL) gets the stats as they were.
void render_cache_configure (uint64_t ttl_ns, uint64_t own_ns, render_cache_stats_t *before);

// The settings, readable without the lock from any thread (relaxed atomics: a stale value costs a miss or
// a store that configure empties anyway, never a wrong answer).
uint64_t render_cache_ttl_ns (void);
uint64_t render_cache_own_ns (void);

// A malloc'd copy of the live entry for (path, ns) at time now, its length in *len_out; NULL when there is
// none (counted as a miss) or no memory. Drops expired entries first when a sweep is due.
char *render_cache_lookup (const char *path, uint64_t ns, uint64_t now, size_t *len_out);

// Keeps a copy of data (len bytes) for (path, ns) until now + ttl, replacing any entry for the same key.
// ns_fd is an open fd of the namespace: owned by the cache from here on, whatever happens (closed when the
// entry is dropped, or at once when the cache is off or full, or on failure). Returns 1 when stored.
int render_cache_store (const char *path, uint64_t ns, int ns_fd, const char *data, size_t len, uint64_t now);

// Drops entries expired at now; returns how many remain.
uint32_t render_cache_sweep (uint64_t now);

void render_cache_stats (render_cache_stats_t *out);

#endif
