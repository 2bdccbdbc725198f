/* broker/scheduler: who gets which job, in what order, and what waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

static qr_sjob_t s_job(uint64_t id, int32_t prio, uint64_t seq, uint64_t units, uint64_t cap)
{
    qr_sjob_t j;
    memset(&j, 0, sizeof j);
    j.id = id;
    j.priority = prio;
    j.seq = seq;
    j.units = units;
    j.max_price = cap;
    j.kind = qr_sched_kind("ai.gemm");
    j.heap_idx = -1;
    return j;
}

static qr_sworker_t s_worker(uint64_t id, uint64_t ask, uint32_t capacity, uint64_t mem)
{
    qr_sworker_t w;
    memset(&w, 0, sizeof w);
    w.id = id;
    w.ask = ask;
    w.reputation = 100;
    w.capacity = capacity;
    w.slots = capacity; /* no prefetch unless a test sets it */
    w.kinds = 1u << qr_sched_kind("ai.gemm");
    w.mem_mb = mem;
    return w;
}

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(qr_sched_kind("ai.gemm"), 0);
    assert_int_equal(qr_sched_kind("ai.infer"), 1);
    assert_int_equal(qr_sched_kind("zk.groth16"), 2);
    assert_string_equal(qr_sched_kind_name(2), "zk.groth16");
    assert_int_equal(qr_sched_kind("zk.nope"), -1);
    assert_int_equal(qr_sched_kind(NULL), -1);
    assert_string_equal(qr_sched_kind_name(0), "ai.gemm");
    assert_null(qr_sched_kind_name(99));
    qr_sched_destroy(NULL);
}

static void test_priority_then_fifo(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    qr_sworker_t w = s_worker(1, 1, 100, 1000);
    qr_sjob_t j[5] = {s_job(1, 0, 1, 1, 10), s_job(2, 5, 2, 1, 10), s_job(3, 0, 3, 1, 10),
                      s_job(4, 5, 4, 1, 10), s_job(5, -1, 5, 1, 10)};
    for (int i = 0; i < 5; i++)
        assert_int_equal(qr_sched_enqueue(s, &j[i]), 0);
    assert_int_equal(qr_sched_queued(s, 0), 5);
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    assert_false(qr_sched_next(s, &gj, &gw)); /* no worker yet */
    assert_int_equal(qr_sched_add_worker(s, &w), 0);
    const uint64_t order[] = {2, 4, 1, 3, 5};
    for (int i = 0; i < 5; i++) {
        assert_true(qr_sched_next(s, &gj, &gw));
        assert_int_equal(gj->id, order[i]);
        assert_ptr_equal(gw, &w);
        assert_int_equal(gj->heap_idx, -1);
    }
    assert_int_equal(w.busy, 5);
    assert_false(qr_sched_next(s, &gj, &gw));
    qr_sched_destroy(&s);
    assert_null(s);
}

static void test_cheapest_then_capacity(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    qr_sworker_t cheap = s_worker(1, 2, 2, 1000), dear = s_worker(2, 5, 2, 1000);
    qr_sched_add_worker(s, &dear);
    qr_sched_add_worker(s, &cheap);
    qr_sjob_t j[5];
    for (int i = 0; i < 5; i++) {
        j[i] = s_job((uint64_t)i + 1, 0, (uint64_t)i, 1, 100);
        qr_sched_enqueue(s, &j[i]);
    }
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    const uint64_t who[] = {1, 1, 2, 2};
    for (int i = 0; i < 4; i++) {
        assert_true(qr_sched_next(s, &gj, &gw));
        assert_int_equal(gw->id, who[i]);
    }
    assert_false(qr_sched_next(s, &gj, &gw)); /* both full; job 5 waits */
    assert_int_equal(qr_sched_queued(s, 0), 1);
    cheap.busy--;
    qr_sched_update_worker(s, &cheap);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_int_equal(gj->id, 5);
    assert_int_equal(gw->id, 1);
    qr_sched_destroy(&s);
}

/* A job whose cap is below every ask is parked, not blocking the others,
 * and comes back when a cheap enough worker registers. */
static void test_price_cap_parks(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    qr_sworker_t w = s_worker(1, 10, 10, 1000);
    qr_sched_add_worker(s, &w);
    qr_sjob_t poor = s_job(1, 9, 1, 4, 39), rich = s_job(2, 0, 2, 4, 40);
    qr_sched_enqueue(s, &poor);
    qr_sched_enqueue(s, &rich);
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_int_equal(gj->id, 2); /* 4 units x 10 = 40 fits only the second */
    assert_false(qr_sched_next(s, &gj, &gw));
    assert_int_equal(qr_sched_parked(s), 1);
    assert_true(poor.parked);
    qr_sworker_t cheap = s_worker(2, 9, 1, 1000);
    qr_sched_add_worker(s, &cheap);
    qr_sched_unpark(s);
    assert_int_equal(qr_sched_parked(s), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_int_equal(gj->id, 1);
    assert_int_equal(gw->id, 2);
    /* dequeue of a parked job */
    qr_sjob_t never = s_job(3, 0, 3, 1000, 1);
    qr_sched_enqueue(s, &never);
    assert_false(qr_sched_next(s, &gj, &gw));
    assert_true(never.parked);
    qr_sched_dequeue(s, &never);
    assert_false(never.parked);
    assert_int_equal(qr_sched_parked(s), 0);
    qr_sched_destroy(&s);
}

static void test_memory_and_gpu(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    qr_sworker_t small = s_worker(1, 1, 4, 512), big = s_worker(2, 3, 4, 4096);
    qr_sworker_t gpu = s_worker(3, 5, 4, 1024);
    gpu.has_gpu = true;
    gpu.gpu_mem_mb = 80000;
    qr_sched_add_worker(s, &small);
    qr_sched_add_worker(s, &big);
    qr_sched_add_worker(s, &gpu);
    qr_sjob_t needs = s_job(1, 0, 1, 1, 100);
    needs.min_mem_mb = 2048;
    qr_sjob_t g = s_job(2, 0, 2, 1, 100);
    g.need_gpu = true;
    g.min_mem_mb = 40000;
    qr_sjob_t tiny = s_job(3, 0, 3, 1, 100);
    qr_sched_enqueue(s, &needs);
    qr_sched_enqueue(s, &g);
    qr_sched_enqueue(s, &tiny);
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    int seen = 0;
    while (qr_sched_next(s, &gj, &gw)) {
        if (gj->id == 1)
            assert_int_equal(gw->id, 2); /* the cheapest does not have the memory */
        if (gj->id == 2)
            assert_int_equal(gw->id, 3); /* only the GPU box */
        if (gj->id == 3)
            assert_int_equal(gw->id, 1);
        seen++;
    }
    assert_int_equal(seen, 3);
    /* removing a worker takes it out of every class */
    qr_sched_remove_worker(s, &gpu);
    for (int c = 0; c < QR_SCHED_CLASSES; c++)
        assert_int_equal(gpu.heap_idx[c], -1);
    qr_sjob_t g2 = s_job(4, 0, 4, 1, 100);
    g2.need_gpu = true;
    qr_sched_enqueue(s, &g2);
    /* no GPU worker at all: it waits in its own queue without holding up CPU jobs */
    assert_false(qr_sched_next(s, &gj, &gw));
    assert_int_equal(qr_sched_queued(s, 0), 1);
    qr_sjob_t cpu = s_job(5, 0, 5, 1, 100);
    qr_sched_enqueue(s, &cpu);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_int_equal(gj->id, 5);
    qr_sched_destroy(&s);
}

/* Random operations against a brute-force model: every decision picks the
 * most urgent job among those some free worker fits, and the cheapest free
 * fitting worker for it. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { NJ = 400, NW = 12 };
    qr_sched_t *s = qr_sched_new();
    static qr_sjob_t jobs[NJ];
    static qr_sworker_t ws[NW];
    unsigned seed = 4242;
    for (int i = 0; i < NW; i++) {
        ws[i] = s_worker((uint64_t)i + 1, 1 + (uint64_t)(rand_r(&seed) % 5), 1 + (uint32_t)(rand_r(&seed) % 3), 1000);
        ws[i].reputation = rand_r(&seed) % 3;
        qr_sched_add_worker(s, &ws[i]);
    }
    for (int i = 0; i < NJ; i++) {
        jobs[i] = s_job((uint64_t)i + 1, rand_r(&seed) % 4, (uint64_t)i, 1, 100);
        qr_sched_enqueue(s, &jobs[i]);
    }
    int assigned = 0;
    while (assigned < NJ) {
        qr_sjob_t *gj;
        qr_sworker_t *gw;
        if (!qr_sched_next(s, &gj, &gw)) {
            /* free one slot of a random busy worker */
            int i = rand_r(&seed) % NW;
            if (ws[i].busy) {
                ws[i].busy--;
                qr_sched_update_worker(s, &ws[i]);
            }
            continue;
        }
        /* model: no queued job is more urgent than gj */
        for (int i = 0; i < NJ; i++)
            if (jobs[i].heap_idx >= 0)
                assert_false(jobs[i].priority > gj->priority ||
                             (jobs[i].priority == gj->priority && jobs[i].seq < gj->seq));
        /* model: no free worker beats gw (busy already counts gj) */
        for (int i = 0; i < NW; i++) {
            qr_sworker_t *o = &ws[i];
            if (o == gw || o->busy >= o->capacity)
                continue;
            assert_false(o->ask < gw->ask);
        }
        assigned++;
    }
    assert_int_equal(qr_sched_queued(s, 0), 0);
    qr_sched_destroy(&s);
}

/* Beyond its slots a worker takes prefetched jobs only while their work stays
 * under max_units: many small jobs, but not a hoard of large ones. */
static void test_prefetch_by_work(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    qr_sworker_t w = s_worker(1, 1, 100, 1000);
    w.slots = 2;
    w.max_units = 10;
    qr_sched_add_worker(s, &w);
    qr_sjob_t small[20], big[3];
    for (int i = 0; i < 20; i++) {
        small[i] = s_job((uint64_t)i + 1, 0, (uint64_t)i, 1, 100);
        qr_sched_enqueue(s, &small[i]);
    }
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    int n = 0;
    while (qr_sched_next(s, &gj, &gw))
        n++;
    assert_int_equal(n, 10); /* 10 units of 1 */
    assert_int_equal(w.units, 10);
    qr_sched_destroy(&s);
    s = qr_sched_new();
    qr_sworker_t v = s_worker(2, 1, 100, 1000);
    v.slots = 2;
    v.max_units = 10;
    qr_sched_add_worker(s, &v);
    for (int i = 0; i < 3; i++) {
        big[i] = s_job((uint64_t)i + 1, 0, (uint64_t)i, 1000, 1000000);
        qr_sched_enqueue(s, &big[i]);
    }
    n = 0;
    while (qr_sched_next(s, &gj, &gw))
        n++;
    assert_int_equal(n, 2); /* its two slots, nothing prefetched */
    qr_sched_destroy(&s);
}

static void test_affinity(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    /* w1 is cheaper; w2 holds the model (key 42) */
    qr_sworker_t w1 = s_worker(1, 1, 2, 1000), w2 = s_worker(2, 5, 1, 1000);
    assert_int_equal(qr_sched_add_worker(s, &w1), 0);
    assert_int_equal(qr_sched_add_worker(s, &w2), 0);
    assert_int_equal(qr_sched_hold(s, &w2, 42), 0);
    assert_int_equal(qr_sched_hold(s, &w2, 42), 0); /* twice is once */
    qr_sjob_t a = s_job(1, 0, 1, 1, 100), b = s_job(2, 0, 2, 1, 100), c = s_job(3, 0, 3, 1, 100);
    a.affinity = 42;
    b.affinity = 42;
    c.affinity = 7; /* nobody holds it */
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    assert_int_equal(qr_sched_enqueue(s, &a), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gj, &a);
    assert_ptr_equal(gw, &w2); /* the holder, despite its ask */
    assert_int_equal(qr_sched_affinity_hits(s), 1);
    /* the holder is full now: the next job on that model goes to the
     * cheapest worker with room instead of waiting */
    assert_int_equal(qr_sched_enqueue(s, &b), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    assert_int_equal(qr_sched_affinity_hits(s), 1);
    assert_int_equal(qr_sched_enqueue(s, &c), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    /* free everything; after unhold the holder is no longer preferred */
    w1.busy = w2.busy = 0;
    w1.units = w2.units = 0;
    qr_sched_update_worker(s, &w1);
    qr_sched_update_worker(s, &w2);
    qr_sched_unhold(s, &w2, 42);
    qr_sjob_t d = s_job(4, 0, 4, 1, 100);
    d.affinity = 42;
    assert_int_equal(qr_sched_enqueue(s, &d), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    /* held again, but affinity switched off (benchmarks) */
    w1.busy = 0;
    w1.units = 0;
    qr_sched_update_worker(s, &w1);
    assert_int_equal(qr_sched_hold(s, &w2, 42), 0);
    qr_sched_set_affinity(s, false);
    qr_sjob_t e = s_job(5, 0, 5, 1, 100);
    e.affinity = 42;
    assert_int_equal(qr_sched_enqueue(s, &e), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    /* on again; a holder that cannot take the job (price cap) is passed over */
    qr_sched_set_affinity(s, true);
    w1.busy = 0;
    w1.units = 0;
    qr_sched_update_worker(s, &w1);
    qr_sjob_t f = s_job(6, 0, 6, 10, 20); /* cap 2 a unit: w2 asks 5 */
    f.affinity = 42;
    assert_int_equal(qr_sched_enqueue(s, &f), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    /* a removed worker is never picked through its holdings */
    w1.busy = 0;
    w1.units = 0;
    qr_sched_update_worker(s, &w1);
    qr_sched_remove_worker(s, &w2);
    qr_sjob_t g = s_job(7, 0, 7, 1, 100);
    g.affinity = 42;
    assert_int_equal(qr_sched_enqueue(s, &g), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    qr_sched_unhold_all(s, &w2);
    qr_sched_unhold(s, &w2, 999); /* unknown key: no-op */
    qr_sched_destroy(&s);
}

static void test_affinity_wait(void **state)
{
    (void)state;
    qr_sched_t *s = qr_sched_new();
    qr_sched_set_affinity_wait(s, 200);
    qr_sched_set_now(s, 1000);
    assert_int_equal(qr_sched_wait_ms(s), -1);
    qr_sworker_t w1 = s_worker(1, 1, 1, 1000), w2 = s_worker(2, 1, 1, 1000);
    assert_int_equal(qr_sched_add_worker(s, &w1), 0);
    assert_int_equal(qr_sched_add_worker(s, &w2), 0);
    assert_int_equal(qr_sched_hold(s, &w1, 42), 0);
    qr_sjob_t a = s_job(1, 0, 1, 1, 100), b = s_job(2, 0, 2, 1, 100);
    a.affinity = b.affinity = 42;
    qr_sjob_t *gj;
    qr_sworker_t *gw;
    assert_int_equal(qr_sched_enqueue(s, &a), 0);
    assert_int_equal(qr_sched_enqueue(s, &b), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gw, &w1);
    /* w1 is full and w2 idle, but b waits for w1 ... */
    assert_false(qr_sched_next(s, &gj, &gw));
    assert_int_equal(qr_sched_wait_ms(s), 200);
    qr_sched_set_now(s, 1150);
    assert_false(qr_sched_next(s, &gj, &gw));
    assert_int_equal(qr_sched_wait_ms(s), 50);
    /* ... and takes w1 as soon as it has room */
    w1.busy = 0;
    w1.units = 0;
    qr_sched_update_worker(s, &w1);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gj, &b);
    assert_ptr_equal(gw, &w1);
    /* past the wait, a job goes to whoever has room */
    qr_sjob_t c = s_job(3, 0, 3, 1, 100);
    c.affinity = 42;
    assert_int_equal(qr_sched_enqueue(s, &c), 0);
    assert_false(qr_sched_next(s, &gj, &gw));
    qr_sched_set_now(s, 1150 + 200);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gj, &c);
    assert_ptr_equal(gw, &w2);
    /* a key nobody holds never waits */
    qr_sjob_t d = s_job(4, 0, 4, 1, 100);
    d.affinity = 7;
    w2.busy = 0;
    w2.units = 0;
    qr_sched_update_worker(s, &w2);
    assert_int_equal(qr_sched_enqueue(s, &d), 0);
    assert_true(qr_sched_next(s, &gj, &gw));
    assert_ptr_equal(gj, &d);
    assert_int_equal(qr_sched_wait_ms(s), -1);
    qr_sched_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_priority_then_fifo),
        cmocka_unit_test(test_cheapest_then_capacity),
        cmocka_unit_test(test_price_cap_parks),
        cmocka_unit_test(test_memory_and_gpu),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_prefetch_by_work),
        cmocka_unit_test(test_affinity),
        cmocka_unit_test(test_affinity_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
