/* The [pipeline] keys of the app and engage families: parsed, range-checked and copied into
 * the pipeline's config (daemon/conf_pipeline.c), with the documented defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/conf.h"
#include "pipeline/pipeline.h"

struct errs {
    char text[4096];
    int n;
};

static void collect(void *ud, const char *file, int line, const char *msg)
{
    struct errs *e = ud;
    size_t used = strlen(e->text);
    (void)file;
    snprintf(e->text + used, sizeof e->text - used, "%d: %s\n", line, msg);
    e->n++;
}

static struct conf *load(const char *text, struct errs *e)
{
    char path[] = "/tmp/engaged-app-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    memset(e, 0, sizeof *e);
    struct conf *c = NULL;
    int r = conf_load(path, &c, collect, e);
    unlink(path);
    if (r < 0) {
        conf_free(c);
        return NULL;
    }
    return c;
}

static void test_keys_reach_the_pipeline(void **state)
{
    (void)state;
    struct errs e;
    struct conf *c = load("[pipeline]\napp_ignore_shorter = 15s\napp_ignore_longer = 2h\n"
                          "app_include = com.a, org.b.\napp_exclude = com.aware.\n"
                          "engage_session_gap = 1min\n", &e);
    assert_non_null(c);
    assert_int_equal(e.n, 0);
    struct pipeline_conf pc;
    struct pipeline_participant_conf *parts = NULL;
    assert_int_equal(conf_fill_pipeline(c, &pc, &parts), 0);
    assert_true(pc.app_ignore_shorter_min == 0.25);
    assert_true(pc.app_ignore_longer_min == 120.0);
    assert_int_equal(pc.engage_session_gap_ms, 60000);
    assert_int_equal(pc.n_app_include, 2);
    assert_string_equal(pc.app_include[0], "com.a");
    assert_string_equal(pc.app_include[1], "org.b.");
    assert_int_equal(pc.n_app_exclude, 1);
    assert_string_equal(pc.app_exclude[0], "com.aware.");
    free(parts);
    conf_free(c);
}

static void test_defaults_match_the_docs(void **state)
{
    (void)state;
    struct conf *c = conf_new_default();
    assert_non_null(c);
    struct pipeline_conf pc;
    struct pipeline_participant_conf *parts = NULL;
    assert_int_equal(conf_fill_pipeline(c, &pc, &parts), 0);
    assert_true(pc.app_ignore_shorter_min == 0);
    assert_true(pc.app_ignore_longer_min == 300.0); /* RAPIDS' default */
    assert_int_equal(pc.engage_session_gap_ms, 30000);
    assert_int_equal(pc.n_app_include, 0);
    assert_int_equal(pc.n_app_exclude, 0);
    conf_free(c);
    /* and the pipeline's own defaults agree */
    pipeline_conf_defaults(&pc);
    assert_true(pc.app_ignore_longer_min == 300.0);
    assert_int_equal(pc.engage_session_gap_ms, 30000);
}

static void test_bad_values_are_errors(void **state)
{
    (void)state;
    struct errs e;
    struct conf *c = load("[pipeline]\napp_ignore_longer = 8d\napp_exclude = com.a, com a\n"
                          "engage_session_gap = -1s\napp_include = x, x\n", &e);
    assert_null(c);
    assert_int_equal(e.n, 4);
    assert_non_null(strstr(e.text, "2: [pipeline] app_ignore_longer"));
    assert_non_null(strstr(e.text, "3: [pipeline] app_exclude"));
    assert_non_null(strstr(e.text, "4: [pipeline] engage_session_gap"));
    assert_non_null(strstr(e.text, "5: [pipeline] app_include"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_reach_the_pipeline),
        cmocka_unit_test(test_defaults_match_the_docs),
        cmocka_unit_test(test_bad_values_are_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
