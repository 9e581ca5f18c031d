/* drivers/relay*.c (docs/relay-profile.md): a stream interrupted at 1000+ random points
 * (disconnections, hub crashes that lose uncommitted records, corrupted, lost, duplicated,
 * reordered and truncated fragments) and resumed delivers exactly the records sent, in order,
 * each stored once after dedupe by seq; a phone that discards records has its gaps announced;
 * the phone's plan after a RESUME (relay_plan_resume). The phone and the hub are modelled here
 * around the real relay_tx / relay_rx code; only the link and the store are simulated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/relay.h"
#include "tests/relay_records.h"

static struct relay_rx rx;

/* ---- interrupted streams ---- */

static uint64_t rng;

static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t rand_below(size_t n)
{
    return (size_t)(next_rand() % n);
}

struct frag {
    uint8_t b[520];
    size_t n;
};

#define Q_MAX 8192

struct sim {
    size_t n;                  /* records, seqs 0..n-1 */
    char **line;
    size_t *len;
    /* link */
    struct frag *q;            /* phone -> hub, in flight */
    size_t qn;
    uint8_t msg[64][RELAY_RESUME_LEN]; /* hub -> phone, in flight */
    size_t msg_len[64], mn;
    size_t mtu;
    /* phone */
    int gen_valid;
    uint8_t gen;
    int64_t acked, next, oldest;
    int started, in_tx;
    size_t max_frag;
    unsigned window;
    struct relay_tx tx;
    int64_t *sent;             /* sent in this generation, increasing */
    size_t sent_n, sent_lo;
    unsigned char *discarded;
    size_t n_discarded;
    /* hub */
    struct relay_rx *rx;
    unsigned char *stored;
    int64_t *pending;
    size_t pn;
    int64_t durable;
    uint64_t dups, delivered, crashes, disconnects, corruptions, timeouts, lost_in_crash;
    struct relay_rx_stats total; /* over every incarnation of the hub's rx */
    int64_t last_delivered;
};

static void hub_resume(struct sim *s)
{
    uint16_t window = (uint16_t)(1 + rand_below(32));
    assert_true(s->mn < 64);
    int n = relay_rx_resume(s->rx, s->durable >= 0, s->durable, (uint16_t)(s->mtu - 3), window,
                            s->msg[s->mn], RELAY_RESUME_LEN);
    assert_int_equal(n, RELAY_RESUME_LEN);
    s->msg_len[s->mn++] = (size_t)n;
    s->last_delivered = -1; /* a new generation */
}

static void hub_commit(struct sim *s)
{
    for (size_t i = 0; i < s->pn; i++) {
        int64_t q = s->pending[i];
        if (s->stored[q])
            s->dups++; /* the daemon's (source, seq) dedupe */
        else
            s->stored[q] = 1;
        if (q > s->durable)
            s->durable = q;
    }
    s->pn = 0;
    if (s->durable >= 0 && s->rx->gen && s->mn < 64) {
        int n = relay_ack_encode(s->rx->gen, s->durable, s->msg[s->mn], RELAY_RESUME_LEN);
        assert_int_equal(n, RELAY_ACK_LEN);
        s->msg_len[s->mn++] = (size_t)n;
    }
}

static void hub_take(struct sim *s)
{
    struct frag f = s->q[0];
    memmove(s->q, s->q + 1, (s->qn - 1) * sizeof *s->q);
    s->qn--;
    struct relay_frame fr;
    int r = relay_rx_feed(s->rx, f.b, f.n, &fr);
    if (r == RELAY_RECORD) {
        assert_true(fr.seq > s->last_delivered); /* in order within a generation */
        s->last_delivered = fr.seq;
        assert_true(fr.seq >= 0 && (size_t)fr.seq < s->n);
        assert_int_equal(fr.len, s->len[fr.seq]);
        assert_memory_equal(fr.data, s->line[fr.seq], fr.len);
        struct event ev;
        char why[DEC_WHY_MAX];
        if (relay_record_event(&fr, P, S, &ev, why) != 0)
            fail_msg("%s", why);
        s->pending[s->pn++] = fr.seq;
        s->delivered++;
    } else {
        assert_int_not_equal(r, RELAY_OVERSIZED);
    }
    if (relay_rx_need_resume(s->rx))
        hub_resume(s);
}

static void phone_take(struct sim *s)
{
    struct relay_resume m;
    char why[DEC_WHY_MAX];
    if (relay_resume_decode(s->msg[0], s->msg_len[0], &m, why) != 0)
        fail_msg("%s", why);
    memmove(s->msg, s->msg + 1, (s->mn - 1) * sizeof s->msg[0]);
    memmove(s->msg_len, s->msg_len + 1, (s->mn - 1) * sizeof s->msg_len[0]);
    s->mn--;
    if (m.op == RELAY_OP_ACK) {
        if (m.seq > s->acked)
            s->acked = m.seq;
        while (s->sent_lo < s->sent_n && s->sent[s->sent_lo] <= s->acked)
            s->sent_lo++;
        return;
    }
    if (s->oldest <= s->acked)
        s->oldest = s->acked + 1;
    int have = s->oldest < (int64_t)s->n;
    struct relay_plan p;
    assert_int_equal(relay_plan_resume(&m, have, s->oldest, (int64_t)s->n - 1, 1,
                                       (int64_t)s->n - 1, &p), 0);
    assert_false(p.renumber);
    if (p.have_free && p.free_upto > s->acked)
        s->acked = p.free_upto;
    s->gen = m.gen;
    s->gen_valid = 1;
    s->in_tx = 0; /* abandon a record half sent */
    s->started = 0;
    s->next = p.send ? p.first : (int64_t)s->n;
    s->window = m.window;
    s->max_frag = s->mtu - 3 < m.max_frag ? s->mtu - 3 : m.max_frag;
    s->sent_n = s->sent_lo = 0;
}

static int phone_can_send(const struct sim *s)
{
    return s->gen_valid && (s->in_tx || (s->next < (int64_t)s->n &&
                                         s->sent_n - s->sent_lo < s->window));
}

static void phone_send(struct sim *s)
{
    if (!s->in_tx) {
        if (s->next < s->oldest)
            s->next = s->oldest;
        if (s->next >= (int64_t)s->n)
            return;
        int64_t q = s->next++;
        assert_int_equal(relay_tx_start(&s->tx, s->gen, !s->started, q, s->line[q], s->len[q],
                                         s->max_frag), 0);
        s->started = 1;
        s->in_tx = 1;
        s->sent[s->sent_n++] = q;
    }
    assert_true(s->qn < Q_MAX);
    int n = relay_tx_next(&s->tx, s->q[s->qn].b, sizeof s->q[0].b);
    assert_true(n > 0);
    s->q[s->qn++].n = (size_t)n;
    if (s->tx.off == s->tx.len)
        s->in_tx = 0;
}

static void corrupt(struct sim *s)
{
    s->corruptions++;
    if (s->qn == 0)
        return;
    size_t i = rand_below(s->qn);
    struct frag *f = &s->q[i];
    switch (rand_below(5)) {
    case 0: /* one bit flipped anywhere */
        f->b[rand_below(f->n)] ^= (uint8_t)(1u << rand_below(8));
        break;
    case 1: /* lost */
        memmove(s->q + i, s->q + i + 1, (s->qn - i - 1) * sizeof *s->q);
        s->qn--;
        break;
    case 2: /* duplicated */
        memmove(s->q + i + 1, s->q + i, (s->qn - i) * sizeof *s->q);
        s->qn++;
        break;
    case 3: /* two swapped */
        if (i + 1 < s->qn) {
            struct frag t = s->q[i];
            s->q[i] = s->q[i + 1];
            s->q[i + 1] = t;
        }
        break;
    default: /* cut short */
        f->n = rand_below(f->n);
        break;
    }
}

static void add_stats(struct relay_rx_stats *t, const struct relay_rx_stats *a)
{
    t->fragments += a->fragments;
    t->records += a->records;
    t->errors += a->errors;
    t->stale += a->stale;
    t->dropped += a->dropped;
    t->duplicates += a->duplicates;
    t->gaps += a->gaps;
    t->gap_records += a->gap_records;
    t->aborted += a->aborted;
    t->resumes += a->resumes;
}

static void disconnect(struct sim *s)
{
    s->disconnects++;
    s->qn = s->mn = 0;
    s->gen_valid = 0;
    s->in_tx = 0;
    if (rand_below(3) == 0) { /* the hub dies: what it had not committed is gone */
        s->crashes++;
        s->lost_in_crash += s->pn;
        s->pn = 0;
        add_stats(&s->total, &s->rx->st);
        assert_int_equal(relay_rx_init(s->rx, RELAY_RX_RECORDS, 20), 0);
    } else {
        hub_commit(s);
        s->mn = 0; /* the ACK went nowhere */
    }
    s->mtu = 23 + rand_below(517 - 23 + 1);
    hub_resume(s);
}

static int all_done(const struct sim *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->stored[i] && !s->discarded[i])
            return 0;
    return 1;
}

/* Runs the stream until every record is stored (or discarded by the phone) and at least
 * min_disconnects disconnections happened while records were still outstanding. drop_every: 0,
 * or the phone discards its oldest held records about once per that many steps. */
static void simulate(struct sim *s, size_t n, uint64_t seed, unsigned min_disconnects,
                     unsigned drop_every)
{
    memset(s, 0, sizeof *s);
    rng = seed;
    s->n = n;
    s->line = calloc(n, sizeof *s->line);
    s->len = calloc(n, sizeof *s->len);
    s->q = calloc(Q_MAX, sizeof *s->q);
    s->sent = calloc(n + 1, sizeof *s->sent);
    s->discarded = calloc(n, 1);
    s->stored = calloc(n, 1);
    s->pending = calloc(4 * n, sizeof *s->pending);
    s->rx = &rx;
    char b[RELAY_RECORD_MAX + 64];
    for (size_t i = 0; i < n; i++) {
        int k = (int)rand_below(64);
        k = k < K_KINDS - 2 ? k : k < 60 ? (int)rand_below(K_KINDS - 2) : k == 60 ? K_MAX_EMA
                                                                             : K_LONG_APP;
        s->len[i] = make_record(b, sizeof b, k, (int64_t)i);
        s->line[i] = malloc(s->len[i]);
        memcpy(s->line[i], b, s->len[i]);
    }
    s->durable = -1;
    s->acked = -1;
    s->mtu = 23;
    assert_int_equal(relay_rx_init(s->rx, RELAY_RX_RECORDS, 20), 0);
    hub_resume(s);
    size_t step = 0, next_cut = 1 + rand_below(40);
    while (!all_done(s) || s->pn) {
        step++;
        if (step > 400 * n + 1000000) {
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                k += s->stored[i];
            fail_msg("no progress: %zu of %zu records stored", k, n);
        }
        if (step == next_cut && !all_done(s)) {
            next_cut = step + 1 + rand_below(40);
            if (rand_below(10) < 7)
                disconnect(s);
            else
                corrupt(s);
            continue;
        }
        if (drop_every && rand_below(drop_every) == 0 && s->oldest < (int64_t)s->n) {
            /* outbox overflow: the phone discards its oldest records */
            if (s->oldest <= s->acked)
                s->oldest = s->acked + 1;
            size_t k = 1 + rand_below(5);
            for (size_t j = 0; j < k && s->oldest < (int64_t)s->n; j++) {
                s->discarded[s->oldest++] = 1;
                s->n_discarded++;
            }
        }
        size_t r = rand_below(100);
        if (r < 45 && phone_can_send(s))
            phone_send(s);
        else if (r < 85 && s->qn)
            hub_take(s);
        else if (r < 95 && s->mn)
            phone_take(s);
        else if (s->pn)
            hub_commit(s);
        else if (!phone_can_send(s) && !s->qn && !s->mn && !all_done(s)) {
            /* nothing moves: the hub's idle timeout asks again */
            s->timeouts++;
            hub_resume(s);
        }
    }
    add_stats(&s->total, &s->rx->st);
    if (s->disconnects < min_disconnects)
        fail_msg("only %llu disconnections", (unsigned long long)s->disconnects);
}

static void sim_free(struct sim *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->line[i]);
    free(s->line);
    free(s->len);
    free(s->q);
    free(s->sent);
    free(s->discarded);
    free(s->stored);
    free(s->pending);
}

static void interrupted(size_t n, uint64_t seed, unsigned min_disconnects)
{
    static struct sim s;
    simulate(&s, n, seed, min_disconnects, 0);
    for (size_t i = 0; i < s.n; i++)
        assert_true(s.stored[i]); /* every record sent is stored, once (stored is a set) */
    assert_int_equal(s.total.gaps, 0);
    printf("# %zu records: %llu disconnections (%llu hub crashes, %llu uncommitted records "
           "lost with them), %llu corruptions, %llu idle resumes; %llu fragments, %llu "
           "deliveries, %llu duplicates dropped by dedupe; %llu errors, %llu stale fragments, "
           "%llu dropped after errors, %llu resumes\n", s.n,
           (unsigned long long)s.disconnects, (unsigned long long)s.crashes,
           (unsigned long long)s.lost_in_crash, (unsigned long long)s.corruptions,
           (unsigned long long)s.timeouts, (unsigned long long)s.total.fragments,
           (unsigned long long)s.delivered, (unsigned long long)s.dups,
           (unsigned long long)s.total.errors, (unsigned long long)s.total.stale,
           (unsigned long long)s.total.dropped, (unsigned long long)s.total.resumes);
    /* every delivery was stored once, dropped by dedupe, or lost in a crash and sent again */
    assert_true(s.delivered == s.n + s.dups + s.lost_in_crash);
    assert_true(s.total.errors > 0 && s.total.stale > 0);
    sim_free(&s);
}

static void test_interrupted_stream_loses_and_duplicates_nothing(void **state)
{
    interrupted(6000, 20261126, 1000);
    interrupted(2000, 1, 300);
    interrupted(2000, 2, 300);
}

static void test_phone_discards_are_announced_as_gaps(void **state)
{
    static struct sim s;
    uint64_t gap_records = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        simulate(&s, 1000, seed, 100, 40);
        size_t lost = 0;
        for (size_t i = 0; i < s.n; i++) {
            assert_true(s.stored[i] || s.discarded[i]);
            lost += !s.stored[i];
        }
        assert_true(s.n_discarded > 0);
        assert_true(lost <= s.n_discarded);
        gap_records += s.total.gap_records;
        assert_true(s.total.gap_records >= lost); /* every record lost was announced */
        sim_free(&s);
    }
    assert_true(gap_records > 0);
}

static void test_phone_resume_plan(void **state)
{
    struct relay_plan p;
    struct relay_resume m = {.op = RELAY_OP_RESUME, .gen = 1, .have_seq = 1, .seq = 15,
                             .max_frag = 20, .window = 8};
    /* holds 10..20: re-send from 16, free up to 15 */
    assert_int_equal(relay_plan_resume(&m, 1, 10, 20, 1, 20, &p), 0);
    assert_true(p.send && p.first == 16 && p.have_free && p.free_upto == 15 && !p.renumber);
    /* the hub has everything */
    m.seq = 20;
    assert_int_equal(relay_plan_resume(&m, 1, 10, 20, 1, 20, &p), 0);
    assert_true(!p.send && p.free_upto == 20);
    /* discarded 6..9 before the hub stored them: start at 10 (the hub sees a gap) */
    m.seq = 5;
    assert_int_equal(relay_plan_resume(&m, 1, 10, 20, 1, 20, &p), 0);
    assert_true(p.send && p.first == 10 && p.free_upto == 5);
    /* the hub has nothing: send all */
    m.have_seq = 0, m.seq = 0;
    assert_int_equal(relay_plan_resume(&m, 1, 10, 20, 1, 20, &p), 0);
    assert_true(p.send && p.first == 10 && !p.have_free);
    /* the hub is ahead of the phone's numbering (reinstalled app): renumber after it */
    m.have_seq = 1, m.seq = 5000;
    assert_int_equal(relay_plan_resume(&m, 1, 0, 20, 1, 20, &p), 0);
    assert_true(p.renumber && p.renumber_to == 5001 && p.send && p.first == 5001 &&
                !p.have_free);
    assert_int_equal(relay_plan_resume(&m, 0, 0, 0, 0, 0, &p), 0);
    assert_true(p.renumber && p.renumber_to == 5001 && !p.send);
    m.seq = RELAY_SEQ_MAX;
    assert_int_equal(relay_plan_resume(&m, 0, 0, 0, 0, 0, &p), -ERANGE);
    m.op = RELAY_OP_ACK;
    assert_int_equal(relay_plan_resume(&m, 0, 0, 0, 0, 0, &p), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interrupted_stream_loses_and_duplicates_nothing),
        cmocka_unit_test(test_phone_discards_are_announced_as_gaps),
        cmocka_unit_test(test_phone_resume_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
