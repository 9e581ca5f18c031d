/* The daemon's own SQLite store as a replay input: its recorded events in storage order,
 * which is the order the live pipeline saw them, so replaying a store reproduces the live
 * daemon's features exactly. Read in pages through the read-only store API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store.h"
#include "drivers/reader.h"

#define PAGE 4096

struct page_item {
    int64_t id;
    int64_t received;
    char *body;
    size_t len;
};

struct rstore {
    struct store_reader *sr;
    int64_t after;
    struct page_item items[PAGE];
    size_t n, pos;
    int end;
};

static int rstore_probe(const char *path, const unsigned char *head, size_t n)
{
    static const char magic[] = "SQLite format 3";
    if (n < sizeof magic || memcmp(head, magic, sizeof magic) != 0)
        return 0;
    return store_is_engaged_db(path) == 1;
}

static int rstore_open(struct reader *r, const char *path, const struct reader_opts *o)
{
    (void)o;
    struct rstore *s = calloc(1, sizeof *s);
    if (!s) {
        r->why = "out of memory";
        return -ENOMEM;
    }
    int e = store_open_readonly(path, &s->sr);
    if (e < 0) {
        r->why = store_strerror(e);
        free(s);
        return e;
    }
    r->priv = s;
    return 0;
}

static int collect(void *ud, int64_t id, const char *body, size_t len, int64_t received)
{
    struct rstore *s = ud;
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, body, len);
    copy[len] = 0;
    s->items[s->n++] = (struct page_item){id, received, copy, len};
    return s->n == PAGE ? 1 : 0;
}

static void drop_page(struct rstore *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].body);
    s->n = s->pos = 0;
}

static int rstore_next(struct reader *r, struct event *ev)
{
    struct rstore *s = r->priv;
    if (s->pos == s->n) {
        drop_page(s);
        if (s->end)
            return READ_EOF;
        int e = store_reader_events(s->sr, s->after, collect, s);
        if (e < 0) {
            r->why = store_strerror(e);
            return e;
        }
        if (s->n < PAGE)
            s->end = 1;
        if (s->n == 0)
            return READ_EOF;
        s->after = s->items[s->n - 1].id;
    }
    struct page_item *it = &s->items[s->pos++];
    r->line = (uint64_t)it->id; /* errors name the row id */
    r->received = it->received;  /* so nudge decisions replay their `late` flags */
    const char *why = NULL;
    int e = ev_parse_json(it->body, it->len, ev, r->scratch, &why);
    if (e == 0)
        return READ_EVENT;
    r->why = why ? why : "invalid stored event";
    return e == -ENOENT ? READ_UNKNOWN : READ_BAD;
}

static void rstore_close(struct reader *r)
{
    struct rstore *s = r->priv;
    if (!s)
        return;
    drop_page(s);
    store_reader_close(s->sr);
    free(s);
    r->priv = NULL;
}

const struct reader_ops reader_store = {
    .name = "store",
    .probe = rstore_probe,
    .open = rstore_open,
    .next = rstore_next,
    .close = rstore_close,
};
