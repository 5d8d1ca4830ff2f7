// One container of `npm run bench:fleet` (bench/fleet.mjs): joins the given cgroups, becomes the init of a
// new pid namespace, starts THREADS idle threads, says "ready", waits for the schedule on stdin, then reads
// its files on that schedule and prints every read at the end (nothing is written while measuring).
//
//   fleet-reader [-c CGROUP_PROCS]... [-t THREADS] [-l] PERIOD_NS PHASE_NS PATH...
//
//   -c FILE   write our pid into FILE (a cgroup.procs) before anything else; repeatable
//   -t N      idle threads besides the main one (default 0); they block in pause() until the end
//   -l        loop mode (the noisy neighbour): read the PATHs back to back from START to END, report counts
//
// stdin, after "ready N" on stdout: one line "START_NS END_NS" (CLOCK_MONOTONIC, the same clock as Node's
// process.hrtime). Loop mode takes "START_NS END_NS FROM_NS": only reads starting at FROM or later count;
// while it reads, a further line "FROM_NS END_NS" moves both (the harness starts the neighbour before the
// other containers exist, and sets its window once their schedule is known). Periodic mode: at START + PHASE + k*PERIOD (k = 0, 1, ... while before END) read every
// PATH in order, each one open(O_RDONLY) / read(64 KiB) until EOF / close, timed with CLOCK_MONOTONIC. A
// tick that comes due while the previous one is still reading starts at once (no tick is skipped).
//
// stdout, after END:
//   R FILE_INDEX DUE_NS START_NS LATENCY_NS ERR
//                                          one per read: its tick's due time and its own start, both relative
//                                          to START_NS of stdin; ERR 0 if the read succeeded, else the errno
//                                          of the failed call, or -1 when the file was empty (no served file
//                                          is empty)
//   L DUE_NS LAG_NS OVERRUN                one per tick. OVERRUN 1: the tick came due while the previous one
//                                          was still reading (a stalled read); LAG_NS: how late its first read
//                                          started after it could have (after the due time, or after the
//                                          previous tick's end when overrun): the load generator's own lag
//   first LATENCY_NS ERR                   loop mode only, as soon as the first read is done (flushed)
//   N READS ERRORS TOTAL_NS MAX_NS         loop mode only, instead of R and L: the reads started in
//                                          [FROM, END)
//   done CPU_US                            this process's utime+stime, all threads (the load generator's cost)
// Exit status: 0 (read errors are data, not failures), 2 on usage, 3 when setup failed (message on stderr).
// Compiled at bench time (gcc -O2 -pthread); no binary is committed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CGROUPS 16
#define IDLE_STACK (64 * 1024)

static char buf[1 << 16];

struct record {
  long long due;
  long long start;
  long long latency;
  int file;
  int err;
};

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(long long t) {
  struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

/** One open/read-to-EOF/close; 0, the errno of the failed call, or -1 for an empty file. */
static int cycle(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n, total = 0;
  int err = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) total += n;
  if (n < 0) err = errno;
  if (close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && total == 0) err = -1;
  return err;
}

static void *idle_thread(void *arg) {
  (void) arg;
  for (;;) pause();
  return NULL;
}

static void die(const char *what) {
  fprintf(stderr, "fleet-reader: %s: %s\n", what, strerror(errno));
  exit(3);
}

static int usage(void) {
  fprintf(stderr, "usage: fleet-reader [-c CGROUP_PROCS]... [-t THREADS] [-l] PERIOD_NS PHASE_NS PATH...\n");
  return 2;
}

static long long cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (long long) (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/** The namespace's init: threads, handshake, reads, report. */
static int run_init(long threads, int loop, long long period, long long phase, char **paths, int nfiles) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, IDLE_STACK > PTHREAD_STACK_MIN ? IDLE_STACK : PTHREAD_STACK_MIN);
  for (long i = 0; i < threads; i++) {
    pthread_t t;
    int rc = pthread_create(&t, &attr, idle_thread, NULL);
    if (rc != 0) {
      errno = rc;
      die("pthread_create");
    }
  }
  printf("ready %ld\n", threads);
  fflush(stdout);

  long long start, end, from;
  char line[128];
  if (fgets(line, sizeof line, stdin) == NULL) return 0; // the harness went away before the start
  int fields = sscanf(line, "%lld %lld %lld", &start, &end, &from);
  if (fields == 2) from = start;
  if (fields < 2 || end < start) {
    fprintf(stderr, "fleet-reader: bad schedule line: %s", line);
    return 3;
  }
  long long now = now_ns();
  if (start < now - 10000000000LL || start > now + 120000000000LL) {
    fprintf(stderr, "fleet-reader: start %lld is far from CLOCK_MONOTONIC now %lld\n", start, now);
    return 3;
  }
  static char out[1 << 20];
  setvbuf(stdout, out, _IOFBF, sizeof out);

  if (loop) {
    long long reads = 0, errors = 0, total = 0, max = 0;
    int first = 1;
    struct pollfd in = {.fd = 0, .events = POLLIN};
    sleep_until(start);
    while (now_ns() < end) {
      if (in.fd >= 0 && poll(&in, 1, 0) > 0) {
        // one short line, written at once into a pipe: one read() gets it whole; EOF: no more updates
        ssize_t n = read(0, line, sizeof line - 1);
        if (n > 0) {
          line[n] = 0;
          if (sscanf(line, "%lld %lld", &from, &end) != 2) {
            fprintf(stderr, "fleet-reader: bad window line: %s", line);
            return 3;
          }
        } else in.fd = -1;
      }
      for (int f = 0; f < nfiles; f++) {
        long long s = now_ns();
        int err = cycle(paths[f]);
        long long l = now_ns() - s;
        if (first) {
          first = 0;
          printf("first %lld %d\n", l, err);
          fflush(stdout);
        }
        if (s < from) continue;
        if (err != 0) errors++;
        total += l;
        if (l > max) max = l;
        reads++;
      }
    }
    printf("N %lld %lld %lld %lld\n", reads, errors, total, max);
  } else {
    long long ticks = (end - start - phase) / period + 1;
    if (ticks < 0) ticks = 0;
    struct record *rec = calloc((size_t) (ticks * nfiles + 1), sizeof *rec);
    long long *lag_due = calloc((size_t) ticks + 1, sizeof *lag_due);
    long long *lag = calloc((size_t) ticks + 1, sizeof *lag);
    char *overrun = calloc((size_t) ticks + 1, 1);
    if (rec == NULL || lag == NULL || lag_due == NULL || overrun == NULL) die("calloc");
    long long n = 0, k = 0, previous_end = 0;
    for (; k < ticks; k++) {
      long long due = start + phase + k * period;
      if (due >= end) break;
      overrun[k] = previous_end > due;
      sleep_until(due);
      for (int f = 0; f < nfiles; f++) {
        long long s = now_ns();
        int err = cycle(paths[f]);
        long long e = now_ns();
        if (f == 0) {
          lag_due[k] = due - start;
          lag[k] = s - (overrun[k] ? previous_end : due);
        }
        rec[n++] = (struct record){.due = due - start, .start = s - start, .latency = e - s, .file = f, .err = err};
        previous_end = e;
      }
    }
    for (long long i = 0; i < n; i++) printf("R %d %lld %lld %lld %d\n", rec[i].file, rec[i].due, rec[i].start, rec[i].latency, rec[i].err);
    for (long long i = 0; i < k; i++) printf("L %lld %lld %d\n", lag_due[i], lag[i], overrun[i]);
  }
  printf("done %lld\n", cpu_us());
  fflush(stdout);
  return 0; // exit_group: the idle threads go with us
}

int main(int argc, char **argv) {
  const char *cgroups[MAX_CGROUPS];
  int ncgroups = 0, loop = 0, opt;
  long threads = 0;
  while ((opt = getopt(argc, argv, "+c:t:l")) != -1) {
    if (opt == 'c' && ncgroups < MAX_CGROUPS) cgroups[ncgroups++] = optarg;
    else if (opt == 't') threads = atol(optarg);
    else if (opt == 'l') loop = 1;
    else return usage();
  }
  if (argc - optind < 3 || threads < 0) return usage();
  long long period = atoll(argv[optind]);
  long long phase = atoll(argv[optind + 1]);
  if (period <= 0 || phase < 0) return usage();
  char **paths = argv + optind + 2;
  int nfiles = argc - optind - 2;

  char pid[32];
  snprintf(pid, sizeof pid, "%d\n", (int) getpid());
  for (int i = 0; i < ncgroups; i++) {
    int fd = open(cgroups[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0) die(cgroups[i]);
    close(fd);
  }
  // The child of the first fork after unshare(CLONE_NEWPID) is pid 1 of the new namespace; we wait for it
  // in the old one. If we are killed (Ctrl-C, the harness's cleanup), the kernel kills it too.
  // (getppid() is 0 in the child, the parent being outside its namespace: a pipe tells whether the parent
  // died before prctl took effect.)
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) != 0) die("pipe");
  if (unshare(CLONE_NEWPID) != 0) die("unshare(CLONE_NEWPID)");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(alive[1]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("prctl");
    struct pollfd p = {.fd = alive[0], .events = POLLIN};
    if (poll(&p, 1, 0) != 0) return 3; // hang-up: the parent is gone already
    close(alive[0]);
    return run_init(threads, loop, period, phase, paths, nfiles);
  }
  close(alive[0]);
  int status;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
