/* `medveil audit export` and `medveil audit alerts` before the audit command dispatches to them:
 * this program compiles tools/medveil/cmd_audit_ext.c with stand-ins for the CLI's shared helpers
 * (cli_error, cli_usage_error, cli_audit). With arguments it is the command ("export ..." or
 * "alerts ..."), for the script tests t_audit_export.sh, t_audit_syslog.sh, t_audit_alerts.py;
 * cli_audit then appends each event it is given to HOME/audit/logged.jsonl, so that the tests see
 * what would be logged. Without arguments it runs its own cmocka checks of usage errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "../tools/medveil/cli.h"
#include "../tools/medveil/cmd_audit_ext.c"
#include "../tools/medveil/home.c"

const char *cli_program = "medveil";

void cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s %s: ", cli_program, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s %s: ", cli_program, cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s help %s' for more information.\n", cli_program, cmd);
    return MV_EXIT_USAGE;
}

int cli_mkdirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);

    if (n >= sizeof buf)
        return -1;
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char saved = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0700) != 0 && access(buf, F_OK) != 0)
                return -1;
            buf[i] = saved;
        }
    }
    return 0;
}

/* The stand-in audit hook: one JSON line per event in HOME/audit/logged.jsonl. MV_TEST_AUDIT_FAIL
 * set makes it fail, as a full disk would. */
int cli_audit(const char *home, const CliAuditEvent *ev)
{
    char path[4096];
    json_t *o, *objects;
    char *text;
    FILE *f;

    if (getenv("MV_TEST_AUDIT_FAIL") != NULL) {
        fprintf(stderr, "medveil: audit log: cannot append (test)\n");
        return -1;
    }
    snprintf(path, sizeof path, "%s/audit/logged.jsonl", home);
    objects = json_array();
    for (size_t i = 0; i < ev->n_objects; i++)
        json_array_append_new(objects, json_string(ev->objects[i]));
    o = json_pack("{s:s, s:s?, s:o, s:s, s:s?, s:s?}", "action", ev->action, "actor", ev->actor, "objects", objects,
                  "outcome", ev->outcome, "purpose", ev->purpose, "detail", ev->detail);
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    f = fopen(path, "a");
    if (f == NULL || text == NULL) {
        free(text);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fprintf(f, "%s\n", text);
    free(text);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- Self-checks --------------------------------------------------------------------- */

static int run(int (*fn)(int, char **), const char *const *args)
{
    char *argv[16];
    int argc = 0;

    while (args[argc] != NULL && argc < 15) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    return fn(argc, argv);
}

static void test_export_usage(void **state)
{
    (void)state;
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "--format", "hl7", NULL}), MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "--syslog", "h:1", NULL}), MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "--syslog", "nohostport", "--tls", NULL}),
                     MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "--tls", NULL}), MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "-o", "a", "--dir", "b", NULL}),
                     MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "--since", "yesterday", NULL}),
                     MV_EXIT_USAGE);
    assert_int_equal(
        run(cli_audit_export, (const char *const[]){"export", "--syslog", "h:1", "--tls", "--cert", "c", NULL}),
        MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "stray", NULL}), MV_EXIT_USAGE);
    /* No log in the home folder: a configuration error. */
    assert_int_equal(run(cli_audit_export, (const char *const[]){"export", "--home", "/nonexistent/mv", NULL}),
                     MV_EXIT_USAGE);
}

static void test_alerts_usage(void **state)
{
    (void)state;
    assert_int_equal(run(cli_audit_alerts, (const char *const[]){"alerts", "--bogus", NULL}), MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_alerts, (const char *const[]){"alerts", "--since", "2026-13-01", NULL}),
                     MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_alerts, (const char *const[]){"alerts", "--config", "/nonexistent/alerts.conf",
                                                                  "--home", "/nonexistent/mv", NULL}),
                     MV_EXIT_USAGE);
    assert_int_equal(run(cli_audit_alerts, (const char *const[]){"alerts", "--home", "/nonexistent/mv", NULL}),
                     MV_EXIT_USAGE);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_usage),
        cmocka_unit_test(test_alerts_usage),
    };

    if (argc > 1) {
        if (strcmp(argv[1], "export") == 0)
            return cli_audit_export(argc - 1, argv + 1);
        if (strcmp(argv[1], "alerts") == 0)
            return cli_audit_alerts(argc - 1, argv + 1);
        fprintf(stderr, "usage: %s [export|alerts OPTIONS...]\n", argv[0]);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
