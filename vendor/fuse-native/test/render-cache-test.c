// Unit test of render-cache.c (PATCHES.md 16), a plain C program: prints "ok N - what" / "not ok N - what"
// lines, then "1..N", and exits 1 when a check failed. Times are a fake clock in ns, passed to the cache.
// The limits checked here are the documented ones (1024 entries, 16 MiB), written out, not taken from the
// header. With --hammer, threads store, look up, sweep and reconfigure concurrently (for ThreadSanitizer
// and AddressSanitizer builds; also run plainly by npm test) and then no namespace fd may be left open.
//
// Build: cc -I.. render-cache-test.c ../render-cache.c -lpthread (test/c-tests.mjs does it).

#include "../render-cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int checks = 0;
static int failures = 0;

static void check (int ok, const char *what) {
  checks++;
  if (!ok) failures++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", checks, what);
  fflush(stdout);
}

// A fresh fd standing in for a namespace's (the cache only keeps and closes it).
static int new_fd (void) {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    perror("open /dev/null");
    exit(2);
  }
  return fd;
}

static int fd_is_open (int fd) {
  return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static int open_fds (void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (d == NULL) return -1;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

// 1 when the cache answers (path, ns) at now with exactly want.
static int lookup_is (const char *path, uint64_t ns, uint64_t now, const char *want) {
  size_t len = 12345;
  char *got = render_cache_lookup(path, ns, now, &len);
  if (want == NULL) {
    free(got);
    return got == NULL;
  }
  int same = got != NULL && len == strlen(want) && memcmp(got, want, len) == 0;
  free(got);
  return same;
}

static int store_str (const char *path, uint64_t ns, int fd, const char *data, uint64_t now) {
  return render_cache_store(path, ns, fd, data, strlen(data), now);
}

static render_cache_stats_t stats (void) {
  render_cache_stats_t s;
  render_cache_stats(&s);
  return s;
}

static void test_off_by_default (void) {
  int fd = new_fd();
  check(render_cache_ttl_ns() == 0, "off until configured");
  check(store_str("/proc/meminfo", 7, fd, "MemTotal", 1000) == 0, "off: a store is refused");
  check(!fd_is_open(fd), "off: the refused entry's namespace fd is closed at once");
  check(lookup_is("/proc/meminfo", 7, 1000, NULL), "off: nothing to look up");
}

static void test_store_lookup (void) {
  render_cache_configure(100, 42, NULL);
  check(render_cache_ttl_ns() == 100 && render_cache_own_ns() == 42, "configure sets the time to live and the own namespace");
  render_cache_stats_t before = stats();
  int fd = new_fd();
  check(store_str("/proc/meminfo", 7, fd, "MemTotal: 1 kB\n", 1000) == 1, "store");
  check(fd_is_open(fd), "a stored entry keeps its namespace fd open");
  check(lookup_is("/proc/meminfo", 7, 1050, "MemTotal: 1 kB\n"), "lookup of the same path and namespace: the content");
  check(lookup_is("/proc/meminfo", 8, 1050, NULL), "another namespace: nothing");
  check(lookup_is("/proc/stat", 7, 1050, NULL), "another path: nothing");
  render_cache_stats_t s = stats();
  check(s.entries == 1 && s.bytes == 15, "stats: 1 entry, 15 bytes");
  check(s.hits == before.hits + 1 && s.misses == before.misses + 2, "stats: 1 hit, 2 misses");

  // The copy is the caller's: changing it leaves the entry alone.
  size_t len = 0;
  char *copy = render_cache_lookup("/proc/meminfo", 7, 1050, &len);
  if (copy != NULL) copy[0] = 'X';
  free(copy);
  check(lookup_is("/proc/meminfo", 7, 1050, "MemTotal: 1 kB\n"), "a lookup returns a copy");

  // Empty content (an empty Buffer may have no data pointer) is content too.
  int efd = new_fd();
  check(render_cache_store("/proc/swaps", 7, efd, NULL, 0, 1000) == 1, "empty content (NULL data, length 0) is stored");
  len = 99;
  char *empty = render_cache_lookup("/proc/swaps", 7, 1050, &len);
  check(empty != NULL && len == 0, "and answered with length 0");
  free(empty);
}

static void test_expiry (void) {
  render_cache_configure(100, 0, NULL);
  int fd = new_fd();
  store_str("/proc/uptime", 7, fd, "1.00 1.00\n", 1000);
  check(lookup_is("/proc/uptime", 7, 1099, "1.00 1.00\n"), "live until store time + ttl");
  check(lookup_is("/proc/uptime", 7, 1100, NULL), "expired at store time + ttl");
  // The sweep that the lookup at 1100 was due for (one per ttl) dropped it.
  check(stats().entries == 0, "the due sweep of that lookup dropped it");
  check(!fd_is_open(fd), "and closed its namespace fd");
}

static void test_sweep (void) {
  render_cache_configure(100, 0, NULL);
  int old_fd = new_fd(), young_fd = new_fd();
  store_str("/proc/stat", 7, old_fd, "cpu 1", 1000);
  store_str("/proc/stat", 9, young_fd, "cpu 2", 1060);
  check(render_cache_sweep(1099) == 2, "sweep before anything expired: 2 remain");
  check(render_cache_sweep(1100) == 1, "sweep at the first expiry: 1 remains");
  check(!fd_is_open(old_fd) && fd_is_open(young_fd), "the dropped entry's fd is closed, the live one's open");
  check(lookup_is("/proc/stat", 9, 1100, "cpu 2"), "the live one still answers");
  check(render_cache_sweep(1160) == 0 && !fd_is_open(young_fd), "sweep after the last expiry: empty, fds closed");

  // A store drops expired entries too, when its sweep is due.
  render_cache_configure(100, 0, NULL);
  int a = new_fd(), b = new_fd();
  store_str("/proc/loadavg", 7, a, "0.00", 1000);
  store_str("/proc/cpuinfo", 8, b, "processor", 1100);
  check(!fd_is_open(a) && stats().entries == 1, "a store's due sweep drops an expired entry of another key");
}

static void test_replace (void) {
  render_cache_configure(1000, 0, NULL);
  int first = new_fd(), second = new_fd();
  store_str("/proc/meminfo", 7, first, "old rendering", 1000);
  check(store_str("/proc/meminfo", 7, second, "new", 1500) == 1, "a second store for the same key");
  render_cache_stats_t s = stats();
  check(s.entries == 1 && s.bytes == 3, "replaces the entry (1 entry, the new length)");
  check(!fd_is_open(first) && fd_is_open(second), "the replaced entry's fd is closed");
  check(lookup_is("/proc/meminfo", 7, 2400, "new"), "lookups get the new content, live until its own expiry");
}

static void test_configure_empties (void) {
  render_cache_configure(1000, 0, NULL);
  int a = new_fd(), b = new_fd();
  store_str("/proc/meminfo", 7, a, "x", 1000);
  store_str("/proc/meminfo", 8, b, "y", 1000);
  render_cache_stats_t before;
  render_cache_configure(1000, 0, &before);
  check(before.entries == 2 && stats().entries == 0, "configure reports the entries it had and drops them");
  check(!fd_is_open(a) && !fd_is_open(b), "closing their fds");
  int c = new_fd();
  store_str("/proc/meminfo", 7, c, "x", 1000);
  render_cache_configure(0, 0, NULL);
  check(render_cache_ttl_ns() == 0 && stats().entries == 0 && !fd_is_open(c), "configure(0) turns it off and empties it");
  check(lookup_is("/proc/meminfo", 7, 1000, NULL), "off again: nothing to look up");
}

static void test_entry_bound (void) {
  // 1025 entries each hold an fd: make room when the soft limit is low.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1200 && rl.rlim_max >= 1200) {
    rl.rlim_cur = 1200;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  int use_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 1200;
  render_cache_configure(1000, 0, NULL);
  char path[32];
  int stored = 0;
  for (int i = 0; i < 1024; i++) {
    snprintf(path, sizeof(path), "/proc/file%d", i);
    stored += store_str(path, 7, use_fds ? new_fd() : -1, "x", 1000);
  }
  check(stored == 1024 && stats().entries == 1024, "1024 entries fit");
  int extra = use_fds ? new_fd() : -1;
  check(store_str("/proc/one-more", 7, extra, "x", 1000) == 0, "the 1025th is refused");
  check(!use_fds || !fd_is_open(extra), "and its namespace fd closed at once");
  check(lookup_is("/proc/one-more", 7, 1000, NULL) && stats().entries == 1024, "the cache still holds 1024");
  check(store_str("/proc/file5", 7, use_fds ? new_fd() : -1, "y", 1000) == 1, "a full cache still takes a newer rendering of a key it has");
  check(lookup_is("/proc/file5", 7, 1000, "y"), "which replaces it");
  render_cache_configure(0, 0, NULL);
}

static void test_byte_bound (void) {
  const size_t mib = 1024 * 1024;
  char *block = malloc(mib + 1);
  if (block == NULL) exit(2);
  memset(block, 'm', mib + 1);
  render_cache_configure(1000, 0, NULL);
  char path[32];
  int stored = 0;
  for (int i = 0; i < 16; i++) {
    snprintf(path, sizeof(path), "/proc/big%d", i);
    stored += render_cache_store(path, 7, new_fd(), block, mib, 1000);
  }
  check(stored == 16 && stats().bytes == 16 * mib, "16 MiB of content fit");
  int fd = new_fd();
  check(render_cache_store("/proc/small", 7, fd, "x", 1, 1000) == 0, "one byte more is refused");
  check(!fd_is_open(fd), "and its namespace fd closed at once");
  render_cache_configure(1000, 0, NULL);
  int big_fd = new_fd();
  char *huge = malloc(16 * mib + 1);
  if (huge == NULL) exit(2);
  memset(huge, 'h', 16 * mib + 1);
  check(render_cache_store("/proc/huge", 7, big_fd, huge, 16 * mib + 1, 1000) == 0 && !fd_is_open(big_fd), "content over 16 MiB alone is refused, fd closed");
  check(render_cache_store("/proc/huge", 7, new_fd(), huge, 16 * mib, 1000) == 1, "exactly 16 MiB alone fits");
  free(huge);
  free(block);
  render_cache_configure(0, 0, NULL);
}

// --hammer: threads share the cache while one of them reconfigures it now and then.
#define HAMMER_THREADS 8
#define HAMMER_OPS 20000
static atomic_uint_fast64_t fake_clock = 1;

static void *hammer (void *arg) {
  unsigned seed = (unsigned) (uintptr_t) arg;
  char path[32];
  char data[64];
  for (int i = 0; i < HAMMER_OPS; i++) {
    uint64_t now = atomic_fetch_add(&fake_clock, 1);
    int r = rand_r(&seed);
    snprintf(path, sizeof(path), "/proc/f%d", r % 13);
    uint64_t ns = 1 + (uint64_t) (r / 13) % 5;
    switch (r % 16) {
      case 0:
        render_cache_sweep(now);
        break;
      case 1: {
        render_cache_stats_t s;
        render_cache_stats(&s);
        if (s.entries > 1024 || s.bytes > 16 * 1024 * 1024) {
          fprintf(stderr, "bounds exceeded: %u entries, %zu bytes\n", s.entries, s.bytes);
          abort();
        }
        break;
      }
      case 2:
        // One thread empties the cache now and then, sometimes turning it off for a while.
        if ((uintptr_t) arg == 1 && i % 500 == 0) render_cache_configure((i / 500) % 4 == 3 ? 0 : 500, ns, NULL);
        break;
      default:
        if (r % 2) {
          int n = snprintf(data, sizeof(data), "%s in %llu", path, (unsigned long long) ns);
          render_cache_store(path, ns, new_fd(), data, (size_t) n, now);
        } else {
          size_t len = 0;
          char *copy = render_cache_lookup(path, ns, now, &len);
          // Whatever is answered was stored for this key.
          char want[64];
          int n = snprintf(want, sizeof(want), "%s in %llu", path, (unsigned long long) ns);
          if (copy != NULL && (len != (size_t) n || memcmp(copy, want, len) != 0)) {
            fprintf(stderr, "lookup of %s in %llu answered another key's content\n", path, (unsigned long long) ns);
            abort();
          }
          free(copy);
        }
    }
    (void) render_cache_ttl_ns(); // the lock-free reads the FUSE threads make
    (void) render_cache_own_ns();
  }
  return NULL;
}

static void run_hammer (void) {
  int fds_before = open_fds();
  render_cache_configure(500, 0, NULL);
  pthread_t threads[HAMMER_THREADS];
  for (uintptr_t i = 0; i < HAMMER_THREADS; i++) pthread_create(&threads[i], NULL, hammer, (void *) (i + 1));
  for (int i = 0; i < HAMMER_THREADS; i++) pthread_join(threads[i], NULL);
  render_cache_stats_t s;
  render_cache_configure(0, 0, &s);
  check(s.hits > 0 && s.misses > 0, "hammer: threads stored, hit and missed concurrently");
  check(stats().entries == 0 && open_fds() == fds_before, "hammer: once emptied, no namespace fd is left open");
}

int main (int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--hammer") == 0) {
    run_hammer();
  } else {
    test_off_by_default();
    test_store_lookup();
    test_expiry();
    test_sweep();
    test_replace();
    test_configure_empties();
    test_entry_bound();
    test_byte_bound();
  }
  printf("1..%d\n", checks);
  return failures == 0 ? 0 : 1;
}
