// Memory-ordering litmus tests on two threads, with the exact RISC-V fences (inline asm) that
// forbid each outcome: message passing, store buffering with several store-to-load fences,
// and Dekker's mutual exclusion guarding a plain counter. A translator that drops a needed
// barrier (x86-64 reorders a store with a later load unless something stops it), or whose
// optimiser takes a load's value from before a fence, shows a forbidden outcome within a few
// thousand rounds on a host with two free cores (measured under Tandem with the store-to-load
// barrier left out: store buffering forbidden outcomes in hundreds to thousands of 10000
// rounds, Dekker losing thousands of increments). The threads meet before every round and
// start it together on the shared clock (`start_round`). Only pass/fail lines go to stdout
// (the same under any correct implementation, whatever the timing); the counts go to stderr,
// with store buffering without a fence as a control that shows whether the run could see
// reordering at all (there the outcome is allowed), and how often a wait gave up the CPU (on
// an oversubscribed host the threads seldom run at once, and little can be seen).
//
// Usage: litmus [rounds per test [microseconds from a meeting to the start of a round]]
// (default 10000 and 3).
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LINE 64

// Every shared word on its own cache line, so the races are on exactly these words.
struct word {
    _Alignas(LINE) volatile long v;
};

static struct word meet_seen[2];
static struct word x, y;        // store buffering
static struct word data, flag;  // message passing
static struct word result[2];   // each thread's loaded values of the round
static struct word want[2], turn, counter; // Dekker

static long rounds = 10000;
// How far ahead of a meeting the threads start a round: longer than a meeting takes.
static unsigned long margin_us = 3;

static inline unsigned long now(void) {
    unsigned long t;
    asm volatile("rdtime %0" : "=r"(t));
    return t;
}

// Ticks of `rdtime` per microsecond (its frequency differs between implementations).
static unsigned long ticks_per_us = 1;
static struct word start_at;

// Waiting: spin, and after 20 us let the other thread run (the host may have fewer free
// cores than threads, and a spinning thread must not hold up the one it waits for). Not
// sooner: a thread inside `sched_yield` when the other arrives leaves late (measured under
// Tandem: yielding every 256 spins made one thread 2 us late in every round).
struct wait {
    unsigned spins;
    unsigned long since;
};

static long yields;

static void relax(struct wait *w) {
    if (++w->spins % 64 != 0) return;
    unsigned long t = now();
    if (w->since == 0) {
        w->since = t;
    } else if (t - w->since > 20 * ticks_per_us) {
        sched_yield();
        __atomic_fetch_add(&yields, 1, __ATOMIC_RELAXED);
        w->since = 0;
    }
}

// A two-thread barrier: each thread publishes how many times it arrived and waits for the
// other to arrive as often. Release before the store, acquire after the wait, so everything
// either thread did before the meeting is visible to the other after it.
static void meet(int me) {
    static __thread long n;
    n++;
    asm volatile("fence rw, w" ::: "memory");
    meet_seen[me].v = n;
    struct wait w = {0};
    while (meet_seen[1 - me].v < n) relax(&w);
    asm volatile("fence r, rw" ::: "memory");
}

static void calibrate(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long t0 = now();
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000l + (b.tv_nsec - a.tv_nsec) < 2000000);
    unsigned long ns = (b.tv_sec - a.tv_sec) * 1000000000l + (b.tv_nsec - a.tv_nsec);
    ticks_per_us = (now() - t0) * 1000 / ns;
    if (ticks_per_us == 0) ticks_per_us = 1;
}

// Starts a round: the threads meet, then thread 0 names a moment shortly ahead and both wait
// for it on the shared clock. A meeting alone lets the thread that arrived last run ahead by
// a cache-line transfer, longer than the racing window; naming the moment before the
// meeting instead let a thread that came late to it start late (measured: one thread about
// 2 us behind in every round for long stretches). After the common start, where each
// thread's clock polling happens to end varies from round to round, so the racing accesses
// overlap in many relative timings.
static void start_round(int me) {
    static __thread unsigned long last;
    meet(me);
    unsigned long at;
    if (me == 0) {
        at = now() + margin_us * ticks_per_us;
        start_at.v = at;
    } else {
        struct wait w = {0};
        while ((at = start_at.v) == last) relax(&w);
    }
    last = at;
    while (now() < at) {
    }
}

// Store buffering: store to my word, fence, load the other's word.
enum sb_kind { SB_NONE, SB_RW_RW, SB_W_R, SB_IORW, SB_AMOSWAP_AQ, SB_KINDS };
static const char *const sb_name[SB_KINDS] = {
    "sb no fence (control)", "sb fence rw,rw", "sb fence w,r", "sb fence iorw,iorw",
    "sb amoswap.d.aq",
};

static long sb_body(enum sb_kind k, long v, volatile long *mine, volatile long *theirs) {
    long r;
    switch (k) {
    case SB_NONE:
        asm volatile("sd %[v], 0(%[m])\n\t"
                     "ld %[r], 0(%[t])"
                     : [r] "=&r"(r) : [v] "r"(v), [m] "r"(mine), [t] "r"(theirs) : "memory");
        break;
    case SB_RW_RW:
        asm volatile("sd %[v], 0(%[m])\n\t"
                     "fence rw, rw\n\t"
                     "ld %[r], 0(%[t])"
                     : [r] "=&r"(r) : [v] "r"(v), [m] "r"(mine), [t] "r"(theirs) : "memory");
        break;
    case SB_W_R:
        asm volatile("sd %[v], 0(%[m])\n\t"
                     "fence w, r\n\t"
                     "ld %[r], 0(%[t])"
                     : [r] "=&r"(r) : [v] "r"(v), [m] "r"(mine), [t] "r"(theirs) : "memory");
        break;
    case SB_IORW:
        asm volatile("sd %[v], 0(%[m])\n\t"
                     "fence iorw, iorw\n\t"
                     "ld %[r], 0(%[t])"
                     : [r] "=&r"(r) : [v] "r"(v), [m] "r"(mine), [t] "r"(theirs) : "memory");
        break;
    default:
        // An AMO with aq is ordered before every later access (GCC's sequentially
        // consistent store is `fence iorw,ow; amoswap.aq`).
        asm volatile("amoswap.d.aq zero, %[v], 0(%[m])\n\t"
                     "ld %[r], 0(%[t])"
                     : [r] "=&r"(r) : [v] "r"(v), [m] "r"(mine), [t] "r"(theirs) : "memory");
        break;
    }
    return r;
}

// Message passing: the writer stores data, fence w,w, flag; the reader loads flag,
// fence r,r, data. Forbidden: this round's flag with an older round's data. The reader loads
// data once before the flag too, through the same register: an optimiser that merged the
// two data loads across the fence would return that early value. The multiplications widen
// the window between the early load and the flag load without leaving the translated block.
static void mp_body(int me, long v, long *r_flag, long *r_data) {
    long early, f, d, k = v;
    if (me == 0) {
        asm volatile("sd %[v], 0(%[d])\n\t"
                     "fence w, w\n\t"
                     "sd %[v], 0(%[f])"
                     : : [v] "r"(v), [d] "r"(&data.v), [f] "r"(&flag.v) : "memory");
        return;
    }
    asm volatile("ld %[e], 0(%[d])\n\t"
                 ".rept 48\n\t"
                 "mul %[k], %[k], %[k]\n\t"
                 ".endr\n\t"
                 "ld %[fv], 0(%[f])\n\t"
                 "fence r, r\n\t"
                 "ld %[dv], 0(%[d])"
                 : [e] "=&r"(early), [fv] "=&r"(f), [dv] "=&r"(d), [k] "+r"(k)
                 : [d] "r"(&data.v), [f] "r"(&flag.v)
                 : "memory");
    (void)early;
    *r_flag = f;
    *r_data = d;
}

// Dekker's algorithm: each thread raises its flag, fence rw,rw, and enters only if the
// other's flag is down; `turn` settles a tie. Without the store-to-load fence both threads
// can see the other's flag down and increment the plain counter at once, losing updates.
static void dekker_lock(int me) {
    int other = 1 - me;
    struct wait w = {0};
    want[me].v = 1;
    asm volatile("fence rw, rw" ::: "memory");
    while (want[other].v) {
        if (turn.v != me) {
            want[me].v = 0;
            while (turn.v != me) relax(&w);
            want[me].v = 1;
            asm volatile("fence rw, rw" ::: "memory");
        } else {
            relax(&w);
        }
    }
    asm volatile("fence r, rw" ::: "memory");
}

static void dekker_unlock(int me) {
    asm volatile("fence rw, w" ::: "memory");
    turn.v = 1 - me;
    want[me].v = 0;
}

static long sb_forbidden[SB_KINDS], mp_forbidden, mp_flag_seen;

// Round r stores r + 1, so no word needs resetting between rounds: a load sees this
// round's store or an older one. That also leaves every word cached by both threads at the
// start of a round, so a store waits in the store buffer while the later load hits.
static void run(int me) {
    for (int k = 0; k < SB_KINDS; k++) {
        for (long r = 0; r < rounds; r++) {
            long v = r + 1;
            start_round(me);
            result[me].v = sb_body(k, v, me ? &y.v : &x.v, me ? &x.v : &y.v);
            meet(me);
            if (me == 0) sb_forbidden[k] += result[0].v != v && result[1].v != v;
        }
    }
    for (long r = 0; r < rounds; r++) {
        long v = r + 1, f = 0, d = 0;
        start_round(me);
        mp_body(me, v, &f, &d);
        if (me == 1) {
            mp_forbidden += f == v && d != v;
            mp_flag_seen += f == v;
        }
        // Not to start the next round before the other thread has read this one's start.
        meet(me);
    }
    // Both threads ask for the lock at the same moment in every round: that is when
    // Dekker's entry protocol is a store-buffering race (without the fence both threads see
    // the other's flag down and enter together).
    for (long r = 0; r < rounds; r++) {
        start_round(me);
        dekker_lock(me);
        counter.v = counter.v + 1;
        dekker_unlock(me);
    }
}

static void *worker(void *arg) {
    (void)arg;
    run(1);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) rounds = atol(argv[1]);
    if (argc > 2) margin_us = atol(argv[2]);
    calibrate();
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) {
        perror("pthread_create");
        return 2;
    }
    run(0);
    pthread_join(t, NULL);

    int failed = 0;
    fprintf(stderr, "litmus: %ld rounds per test, %ld waits gave up the CPU\n", rounds, yields);
    for (int k = 0; k < SB_KINDS; k++) {
        fprintf(stderr, "%s: both loads old in %ld rounds\n", sb_name[k], sb_forbidden[k]);
        if (k == SB_NONE) continue;
        printf("%s: %s\n", sb_name[k], sb_forbidden[k] ? "FAIL" : "pass");
        failed |= sb_forbidden[k] != 0;
    }
    fprintf(stderr, "mp: new flag seen in %ld rounds, with old data in %ld\n", mp_flag_seen,
            mp_forbidden);
    printf("mp fence w,w / fence r,r: %s\n", mp_forbidden ? "FAIL" : "pass");
    failed |= mp_forbidden != 0;
    fprintf(stderr, "dekker: counter %ld of %ld\n", counter.v, 2 * rounds);
    printf("dekker fence rw,rw: %s\n", counter.v == 2 * rounds ? "pass" : "FAIL");
    failed |= counter.v != 2 * rounds;
    return failed;
}
