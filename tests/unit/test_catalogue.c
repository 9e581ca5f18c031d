/* The feature catalogue (pipeline/catalogue.c) against what the pipeline really emits and what
 * docs/features.md documents: every golden replay input and the demo go through a pipeline with
 * every optional output on (--epochs, --summary, a nudge rule); each feature emitted must be in
 * the catalogue, each catalogue name must be emitted by some input and documented. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline/nudge.h"
#include "pipeline/pipeline.h"

struct seen {
    const char *const *names;
    size_t n;
    int *hit;
    int unknown;
};

static int sink(void *ud, const struct feature_record *r)
{
    struct seen *s = ud;
    if (r->nudge)
        return 0;
    if (!feature_known(r->feature)) {
        fprintf(stderr, "not in the catalogue: %s\n", r->feature);
        s->unknown++;
        return 0;
    }
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], r->feature) == 0)
            s->hit[i] = 1;
    return 0;
}

static void replay_file(const char *path, struct seen *s)
{
    static const struct nudge_node node = {.kind = NUDGE_CMP, .feature = "yield.phone",
                                           .cmp = NUDGE_GE};
    static const struct nudge_rule_conf rule = {
        .name = "r", .message = "m", .probability = 1, .max_per_day = 1, .max_per_week = 7,
        .escalate_to = -1, .escalate_after_ms = 3600000, .n_nodes = 1, .root = 0,
        .nodes = &node};
    struct pipeline_conf c;
    pipeline_conf_defaults(&c);
    c.act.epochs = 1;
    c.act.summary = 1;
    c.nudge.rules = &rule;
    c.nudge.n_rules = 1;
    int err = 0;
    struct pipeline *pl = pipeline_new(&c, sink, s, &err);
    assert_non_null(pl);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static float scratch[EV_ACCEL_MAX][3];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        struct event ev;
        const char *why;
        if (ev_parse_json(line, (size_t)n - (line[n - 1] == '\n'), &ev, scratch, &why) == 0)
            pipeline_push(pl, &ev);
    }
    free(line);
    fclose(f);
    pipeline_finish(pl);
    pipeline_free(pl);
}

static void test_every_emitted_feature_is_catalogued_and_documented(void **state)
{
    (void)state;
    struct seen s = {0};
    s.n = feature_catalogue(&s.names);
    s.hit = calloc(s.n, sizeof *s.hit);
    glob_t g;
    assert_int_equal(glob("replay/*.jsonl", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 20);
    for (size_t i = 0; i < g.gl_pathc; i++)
        replay_file(g.gl_pathv[i], &s);
    globfree(&g);
    replay_file("../demo/demo.jsonl", &s);
    assert_int_equal(s.unknown, 0);

    FILE *f = fopen("../docs/features.md", "r");
    assert_non_null(f);
    static char doc[1 << 20];
    size_t len = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[len] = 0;
    int missing = 0;
    for (size_t i = 0; i < s.n; i++) {
        char quoted[80];
        snprintf(quoted, sizeof quoted, "`%s`", s.names[i]);
        /* nudge.time_to_open_s needs an acknowledgement naming a nudge id, which depends on
         * the rule: the golden case nudge_escalation covers it with its own configuration */
        if (!s.hit[i] && strcmp(s.names[i], "nudge.time_to_open_s") != 0) {
            fprintf(stderr, "catalogued but never emitted by the golden inputs: %s\n", s.names[i]);
            missing++;
        }
        if (!strstr(doc, quoted)) {
            fprintf(stderr, "catalogued but not documented in docs/features.md: %s\n",
                    s.names[i]);
            missing++;
        }
    }
    free(s.hit);
    assert_int_equal(missing, 0);
}

static void test_lookup_and_suggestions(void **state)
{
    (void)state;
    assert_true(feature_known("engage.minutes"));
    assert_false(feature_known("engage.minute"));
    assert_false(feature_known(""));
    assert_string_equal(feature_closest("engage.minute"), "engage.minutes");
    assert_string_equal(feature_closest("yeild.phone"), "yield.phone");
    assert_null(feature_closest("foo.bar"));
    const char *const *names;
    size_t n = feature_catalogue(&names);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(names[i - 1], names[i]) < 0); /* sorted: bsearch relies on it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_emitted_feature_is_catalogued_and_documented),
        cmocka_unit_test(test_lookup_and_suggestions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
