// Benchmark reader: open(O_RDONLY) / read(64 KiB) until EOF / close cycles on one file, timed with
// CLOCK_MONOTONIC (system-wide, so start/end stamps of readers in different pid namespaces compare).
//   reader latency PATH N     -> N per-cycle latencies in ns, one per line, then "failures F"
//   reader throughput PATH N  -> "reads N failures F start_ns S end_ns E"
//   reader once PATH          -> one cycle's latency in ns, then "failures F"
// A cycle fails when open, read or close fails, or when the file is empty (no served /proc file is empty;
// BENCH_ALLOW_EMPTY=1 allows it, for the profile's empty file). Exits 1 when any cycle failed, 2 on usage.
// Compiled at bench time (gcc -O2); no binary is committed.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static int allow_empty;
static int last_errno;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cycle(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    last_errno = errno;
    return -1;
  }
  ssize_t n, total = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
  if (n < 0) last_errno = errno;
  if (close(fd) != 0 && n >= 0) {
    last_errno = errno;
    n = -1;
  }
  return n < 0 || (total == 0 && !allow_empty) ? -1 : 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 2 ? argv[1] : "";
  int once = strcmp(mode, "once") == 0;
  if ((!once && argc != 4) || (once && argc != 3) ||
      (!once && strcmp(mode, "latency") != 0 && strcmp(mode, "throughput") != 0)) {
    fprintf(stderr, "usage: reader latency|throughput PATH N | reader once PATH\n");
    return 2;
  }
  const char *path = argv[2];
  long n = once ? 1 : atol(argv[3]);
  if (n <= 0) {
    fprintf(stderr, "reader: N must be positive\n");
    return 2;
  }
  allow_empty = getenv("BENCH_ALLOW_EMPTY") != NULL && strcmp(getenv("BENCH_ALLOW_EMPTY"), "1") == 0;
  long failures = 0;
  if (strcmp(mode, "throughput") == 0) {
    long long s = now_ns();
    for (long i = 0; i < n; i++)
      if (cycle(path) != 0) failures++;
    long long e = now_ns();
    printf("reads %ld failures %ld start_ns %lld end_ns %lld\n", n, failures, s, e);
  } else {
    long long *t = malloc(sizeof(long long) * (size_t) n);
    if (t == NULL) return 2;
    for (long i = 0; i < n; i++) {
      long long s = now_ns();
      if (cycle(path) != 0) failures++;
      t[i] = now_ns() - s;
    }
    for (long i = 0; i < n; i++) printf("%lld\n", t[i]);
    printf("failures %ld\n", failures);
  }
  if (failures) fprintf(stderr, "reader: %ld of %ld cycles failed on %s (last error: %s)\n", failures, n, path, last_errno ? strerror(last_errno) : "empty file");
  return failures ? 1 : 0;
}
