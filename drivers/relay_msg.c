/* The small messages of the relay service (docs/relay-profile.md): RESUME and ACK on the resume
 * characteristic, the phone's status and the hub's control byte, the nudge record, the phone's
 * plan after a RESUME, and the check that turns a delivered record into an event.
 * Every decoder insists on the exact length and on zero reserved bits: these messages are ours,
 * so anything else is a bug on one side and should be seen, not tolerated. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "drivers/decode_int.h"
#include "drivers/relay.h"

int relay_resume_encode(const struct relay_resume *m, uint8_t *out, size_t cap)
{
    int resume = m->op == RELAY_OP_RESUME;
    size_t n = resume ? RELAY_RESUME_LEN : RELAY_ACK_LEN;
    if ((!resume && m->op != RELAY_OP_ACK) || m->gen == 0 || m->seq < 0 ||
        (!m->have_seq && (m->seq != 0 || !resume)) ||
        (resume && (m->max_frag < RELAY_FRAG_MIN || m->window == 0)))
        return -EINVAL;
    if (cap < n)
        return -ENOBUFS;
    out[0] = (uint8_t)m->op;
    out[1] = m->gen;
    out[2] = m->have_seq ? RELAY_FLAG_HAVE_SEQ : 0;
    put_le64(out + 3, (uint64_t)m->seq);
    if (resume) {
        put_le16(out + 11, m->max_frag);
        put_le16(out + 13, m->window);
    }
    return (int)n;
}

int relay_ack_encode(uint8_t gen, int64_t seq, uint8_t *out, size_t cap)
{
    struct relay_resume m = {.op = RELAY_OP_ACK, .gen = gen, .have_seq = 1, .seq = seq};
    return relay_resume_encode(&m, out, cap);
}

int relay_resume_decode(const uint8_t *buf, size_t len, struct relay_resume *m, char *why)
{
    if (len == 0)
        return dec_fail(why, -EINVAL, "resume: empty value");
    int op = buf[0];
    size_t want = op == RELAY_OP_RESUME ? RELAY_RESUME_LEN : RELAY_ACK_LEN;
    if (op != RELAY_OP_RESUME && op != RELAY_OP_ACK)
        return dec_fail(why, -EINVAL, "resume: unknown operation 0x%02x", op);
    if (len != want)
        return dec_fail(why, -EINVAL, "resume: %s of %zu bytes (exactly %zu)",
                        op == RELAY_OP_RESUME ? "RESUME" : "ACK", len, want);
    struct relay_resume r = {.op = op, .gen = buf[1]};
    if (r.gen == 0)
        return dec_fail(why, -EINVAL, "resume: generation 0");
    if (buf[2] & ~RELAY_FLAG_HAVE_SEQ)
        return dec_fail(why, -EINVAL, "resume: reserved flag bits 0x%02x", buf[2]);
    r.have_seq = buf[2] & RELAY_FLAG_HAVE_SEQ;
    uint64_t seq = get_le64(buf + 3);
    if (seq > (uint64_t)RELAY_SEQ_MAX)
        return dec_fail(why, -EINVAL, "resume: seq %" PRIu64 " beyond 2^63-1", seq);
    if (!r.have_seq && op == RELAY_OP_ACK)
        return dec_fail(why, -EINVAL, "resume: ACK without the HAVE_SEQ flag");
    if (!r.have_seq && seq != 0)
        return dec_fail(why, -EINVAL, "resume: seq %" PRIu64 " without the HAVE_SEQ flag", seq);
    r.seq = (int64_t)seq;
    if (op == RELAY_OP_RESUME) {
        r.max_frag = get_le16(buf + 11);
        r.window = get_le16(buf + 13);
        if (r.max_frag < RELAY_FRAG_MIN)
            return dec_fail(why, -EINVAL, "resume: fragment size %u (at least %d)", r.max_frag,
                            RELAY_FRAG_MIN);
        if (r.window == 0)
            return dec_fail(why, -EINVAL, "resume: window 0");
    }
    *m = r;
    return 0;
}

int relay_plan_resume(const struct relay_resume *m, int have_records, int64_t oldest,
                      int64_t newest, int have_assigned, int64_t last_assigned,
                      struct relay_plan *plan)
{
    if (m->op != RELAY_OP_RESUME || (have_records && (oldest < 0 || newest < oldest)) ||
        (have_records && (!have_assigned || newest > last_assigned)))
        return -EINVAL;
    memset(plan, 0, sizeof *plan);
    if (!m->have_seq) {
        plan->send = have_records;
        plan->first = oldest;
        return 0;
    }
    int64_t s = m->seq;
    if (!have_assigned || s > last_assigned) {
        /* The hub has seqs this phone never assigned: its numbering restarted. Its records
         * cannot be the hub's, so they are renumbered after the hub's, not freed. */
        if (s == RELAY_SEQ_MAX)
            return -ERANGE;
        plan->renumber = 1;
        plan->renumber_to = s + 1;
        plan->send = have_records;
        plan->first = s + 1;
        return 0;
    }
    plan->have_free = 1;
    plan->free_upto = s;
    if (!have_records || newest <= s)
        return 0;
    plan->send = 1;
    plan->first = oldest > s ? oldest : s + 1;
    return 0;
}

int relay_status_encode(const struct relay_status *s, uint8_t *out, size_t cap)
{
    if (s->version != RELAY_VERSION || (s->flags & ~7u) ||
        ((s->flags & RELAY_STATUS_HAVE_NEWEST) ? s->newest < 0 : s->newest != 0))
        return -EINVAL;
    if (cap < RELAY_STATUS_LEN)
        return -ENOBUFS;
    out[0] = (uint8_t)s->version;
    out[1] = (uint8_t)s->flags;
    put_le64(out + 2, (uint64_t)s->newest);
    put_le32(out + 10, s->pending);
    put_le32(out + 14, s->dropped);
    return RELAY_STATUS_LEN;
}

int relay_status_decode(const uint8_t *buf, size_t len, struct relay_status *s, char *why)
{
    if (len != RELAY_STATUS_LEN)
        return dec_fail(why, -EINVAL, "status: %zu bytes (exactly %d)", len, RELAY_STATUS_LEN);
    if (buf[0] != RELAY_VERSION)
        return dec_fail(why, -EINVAL, "status: version %u (this hub speaks %d)", buf[0],
                        RELAY_VERSION);
    if (buf[1] & ~7u)
        return dec_fail(why, -EINVAL, "status: reserved flag bits 0x%02x", buf[1]);
    uint64_t newest = get_le64(buf + 2);
    if (newest > (uint64_t)RELAY_SEQ_MAX)
        return dec_fail(why, -EINVAL, "status: newest seq %" PRIu64 " beyond 2^63-1", newest);
    if (!(buf[1] & RELAY_STATUS_HAVE_NEWEST) && newest != 0)
        return dec_fail(why, -EINVAL, "status: newest seq without the HAVE_NEWEST flag");
    *s = (struct relay_status){.version = buf[0], .flags = buf[1], .newest = (int64_t)newest,
                               .pending = get_le32(buf + 10), .dropped = get_le32(buf + 14)};
    return 0;
}

int relay_control_decode(const uint8_t *buf, size_t len, int *ret_op, char *why)
{
    if (len != 1)
        return dec_fail(why, -EINVAL, "control: %zu bytes (exactly 1)", len);
    if (buf[0] < RELAY_CTL_STATUS || buf[0] > RELAY_CTL_CONTINUE)
        return dec_fail(why, -EINVAL, "control: unknown operation 0x%02x", buf[0]);
    *ret_op = buf[0];
    return 0;
}

/* ---- nudges ---- */

static int ts_ok(int64_t t)
{
    return t >= EV_TS_MIN && t < EV_TS_MAX;
}

static int name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n >= 1 && n <= max && dec_text_ok((const uint8_t *)s, n);
}

int relay_nudge_encode(const struct relay_nudge *n, uint8_t *out, size_t cap)
{
    if (n->priority > RELAY_PRIO_HIGH || !ts_ok(n->ts) ||
        (n->expires != 0 && (!ts_ok(n->expires) || n->expires < n->ts)) ||
        !ev_valid_id(n->participant) || !name_ok(n->id, EV_NAME_MAX) ||
        !name_ok(n->tmpl, EV_NAME_MAX))
        return -EINVAL;
    size_t lp = strlen(n->participant), li = strlen(n->id), lt = strlen(n->tmpl);
    size_t len = 18 + 1 + lp + 1 + li + 1 + lt;
    if (cap < len)
        return -ENOBUFS;
    out[0] = RELAY_NUDGE_VERSION;
    out[1] = (uint8_t)n->priority;
    put_le64(out + 2, (uint64_t)n->ts);
    put_le64(out + 10, (uint64_t)n->expires);
    size_t o = 18;
    const char *s[3] = {n->participant, n->id, n->tmpl};
    size_t l[3] = {lp, li, lt};
    for (int k = 0; k < 3; k++) {
        out[o++] = (uint8_t)l[k];
        memcpy(out + o, s[k], l[k]);
        o += l[k];
    }
    return (int)o;
}

int relay_nudge_decode(const uint8_t *buf, size_t len, struct relay_nudge *n, char *why)
{
    static const char *const what[3] = {"participant", "id", "template"};
    static const size_t max[3] = {EV_ID_MAX, EV_NAME_MAX, EV_NAME_MAX};
    if (len < 18)
        return dec_fail(why, -EINVAL, "nudge: %zu bytes (at least 18)", len);
    if (buf[0] != RELAY_NUDGE_VERSION)
        return dec_fail(why, -EINVAL, "nudge: version %u (this side speaks %d)", buf[0],
                        RELAY_NUDGE_VERSION);
    struct relay_nudge r;
    memset(&r, 0, sizeof r);
    r.priority = buf[1];
    r.ts = (int64_t)get_le64(buf + 2);
    r.expires = (int64_t)get_le64(buf + 10);
    if (r.priority > RELAY_PRIO_HIGH)
        return dec_fail(why, -EINVAL, "nudge: priority %u (0..2)", r.priority);
    if (!ts_ok(r.ts))
        return dec_fail(why, -EINVAL, "nudge: ts %" PRId64 " out of range", r.ts);
    if (r.expires != 0 && (!ts_ok(r.expires) || r.expires < r.ts))
        return dec_fail(why, -EINVAL, "nudge: expires %" PRId64 " out of range or before ts",
                        r.expires);
    char *dst[3] = {r.participant, r.id, r.tmpl};
    size_t o = 18;
    for (int k = 0; k < 3; k++) {
        if (o >= len)
            return dec_fail(why, -EINVAL, "nudge: ends before its %s at byte %zu", what[k], o);
        size_t l = buf[o++];
        if (l == 0 || l > max[k])
            return dec_fail(why, -EINVAL, "nudge: %s of %zu bytes (1..%zu)", what[k], l, max[k]);
        if (l > len - o)
            return dec_fail(why, -EINVAL, "nudge: %s of %zu bytes at byte %zu runs past the end",
                            what[k], l, o);
        if (!dec_text_ok(buf + o, l))
            return dec_fail(why, -EINVAL, "nudge: %s at byte %zu is not UTF-8 text without "
                            "control characters", what[k], o);
        memcpy(dst[k], buf + o, l);
        dst[k][l] = '\0';
        o += l;
    }
    if (o != len)
        return dec_fail(why, -EINVAL, "nudge: %zu extra bytes at byte %zu", len - o, o);
    if (!ev_valid_id(r.participant))
        return dec_fail(why, -EINVAL, "nudge: participant must match [A-Za-z0-9_-]{1,64}");
    *n = r;
    return 0;
}

/* ---- records ---- */

int relay_record_event(const struct relay_frame *f, const char *participant, const char *source,
                       struct event *ev, char *why)
{
    const char *w = NULL;
    if (!f->data)
        return dec_fail(why, -EINVAL, "record seq %" PRId64 " of %zu bytes, above %d", f->seq,
                        f->len, RELAY_RECORD_MAX);
    int r = ev_parse_json((const char *)f->data, f->len, ev, NULL, &w);
    if (r < 0)
        return dec_fail(why, r == -ENOENT ? -ENOENT : -EINVAL, "record seq %" PRId64 ": %s",
                        f->seq, w ? w : "invalid");
    if (!ev->has_seq || ev->seq != f->seq)
        return dec_fail(why, -EINVAL, "record seq %" PRId64 ": the line's seq %s", f->seq,
                        ev->has_seq ? "differs" : "is missing");
    if (!ev_is_phone(ev->type))
        return dec_fail(why, -EINVAL, "record seq %" PRId64 ": type %s is not relayed by a "
                        "phone", f->seq, ev_type_name(ev->type));
    if (participant && strcmp(ev->participant, participant) != 0)
        return dec_fail(why, -EINVAL, "record seq %" PRId64 ": participant is not %s", f->seq,
                        participant);
    if (source && strcmp(ev->source, source) != 0)
        return dec_fail(why, -EINVAL, "record seq %" PRId64 ": source is not %s", f->seq,
                        source);
    return 0;
}
