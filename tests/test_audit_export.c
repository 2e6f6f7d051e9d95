/* Unit tests of src/audit/export.c, syslog.c and alerts.c: RFC 3339 parsing and formatting, the
 * events.jsonl reader (every malformed line named by number, the reader usable after it), the
 * action -> DICOM event mapping, XML escaping of hostile text, RFC 5424 message layout, the
 * alert configuration file (values, unknown keys, bad numbers with their line) and the
 * threshold edges of the unlock, bulk and sensitive rules on small hand-made logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "medveil/audit_export.h"

/* ---- Time ---------------------------------------------------------------------------- */

static void test_time(void **state)
{
    int64_t us = 0, us2 = 0;
    char buf[40];

    (void)state;
    assert_int_equal(mv_audit_time_parse("1970-01-01T00:00:00Z", &us), MV_OK);
    assert_int_equal(us, 0);
    assert_int_equal(mv_audit_time_parse("2026-11-27T07:30:00.123456Z", &us), MV_OK);
    /* date -u -d 2026-11-27T07:30:00Z +%s = 1795764600 */
    assert_int_equal(us, INT64_C(1795764600) * 1000000 + 123456);
    mv_audit_time_format(us, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-27T07:30:00.123456Z");
    assert_int_equal(mv_audit_time_parse("2026-11-27T08:30:00.123456+01:00", &us2), MV_OK);
    assert_int_equal(us, us2);
    assert_int_equal(mv_audit_time_parse("2026-11-27", &us), MV_OK);
    assert_int_equal(us, INT64_C(1795737600) * 1000000);
    assert_int_equal(mv_audit_time_parse("2024-02-29T23:59:59.5Z", &us), MV_OK);
    mv_audit_time_format(us, buf, sizeof buf);
    assert_string_equal(buf, "2024-02-29T23:59:59.500000Z");
    mv_audit_time_format(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(mv_audit_time_parse("2025-02-29", &us), MV_ERR_PARSE);
    assert_int_equal(mv_audit_time_parse("2026-11-27T07:30:00", &us), MV_ERR_PARSE); /* no zone */
    assert_int_equal(mv_audit_time_parse("2026-11-27T24:00:00Z", &us), MV_ERR_PARSE);
    assert_int_equal(mv_audit_time_parse("2026-11-27T07:30:00.Z", &us), MV_ERR_PARSE);
    assert_int_equal(mv_audit_time_parse("2026-11-27T07:30:00Zjunk", &us), MV_ERR_PARSE);
    assert_int_equal(mv_audit_time_parse("", &us), MV_ERR_PARSE);
    assert_int_equal(mv_audit_time_parse("yesterday", &us), MV_ERR_PARSE);
}

/* ---- Reader ------------------------------------------------------------------------------ */

static void test_reader(void **state)
{
    static const char log[] =
        "{\"action\":\"vault.get\",\"actor\":\"a\",\"objects\":[\"x\",\"y\"],\"outcome\":\"success\","
        "\"seq\":0,\"time\":\"2026-01-01T00:00:00Z\",\"host\":\"h\"}\n"
        "\n"
        "[1,2]\n"
        "{\"action\":\"vault.get\",\"actor\":\"a\",\"objects\":[1],\"outcome\":\"success\",\"time\":\"2026-01-01T00:00:00Z\"}\n"
        "{\"action\":\"vault.get\",\"actor\":\"a\",\"outcome\":\"success\",\"outcome\":\"failure\",\"time\":\"2026-01-01T00:00:00Z\"}\n"
        "{\"action\":\"vault.get\",\"outcome\":\"success\",\"time\":\"2026-01-01T00:00:00Z\"}\n"
        "{\"action\":\"vault.get\",\"actor\":\"a\",\"outcome\":\"ok\",\"time\":\"2026-01-01T00:00:00Z\"}\n"
        "{\"action\":\"vault.get\",\"actor\":\"a\",\"outcome\":\"denied\",\"time\":\"2026-01-01T00:00:00Z\",\"seq\":-4}\n"
        "{\"action\":\"auth.unlock\",\"actor\":\"b\",\"outcome\":\"failure\",\"time\":\"2026-01-02T00:00:00Z\","
        "\"detail\":\"d\",\"purpose\":null}";
    MvAuditReader *r = NULL;
    MvAuditEvent ev;
    MvError err;
    static const uint64_t bad_lines[] = {3, 4, 5, 6, 7, 8};

    (void)state;
    assert_int_equal(mv_audit_reader_open_mem(log, sizeof log - 1, "events.jsonl", &r, &err), MV_OK);
    assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_OK);
    assert_string_equal(ev.action, "vault.get");
    assert_int_equal(ev.n_objects, 2);
    assert_string_equal(ev.objects[1], "y");
    assert_int_equal(ev.seq, 0);
    assert_string_equal(ev.host, "h");
    for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++) {
        char want[32];
        assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_ERR_PARSE);
        assert_int_equal(err.offset, bad_lines[i]);
        snprintf(want, sizeof want, "line %llu", (unsigned long long)bad_lines[i]);
        if (strstr(err.message, want) == NULL || strstr(err.message, "events.jsonl") == NULL)
            fail_msg("message '%s' does not name events.jsonl %s", err.message, want);
    }
    assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_OK);
    assert_string_equal(ev.action, "auth.unlock");
    assert_null(ev.purpose);
    assert_string_equal(ev.detail, "d");
    assert_int_equal(ev.seq, -1);
    assert_int_equal(ev.n_objects, 0);
    assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_ERR_NOTFOUND);
    mv_audit_reader_free(r);
    assert_int_equal(mv_audit_reader_open("/nonexistent/events.jsonl", &r, &err), MV_ERR_NOTFOUND);
    assert_null(r);
}

static char tmp_dir[64];

/* A line of 3 MiB (the reader keeps at most 1 MiB of it) is reported and skipped; the next is read. */
static void test_reader_long_line(void **state)
{
    char path[128];
    FILE *f;
    MvAuditReader *r = NULL;
    MvAuditEvent ev;
    MvError err;

    (void)state;
    snprintf(path, sizeof path, "%s/long.jsonl", tmp_dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"action\":\"", f);
    for (int i = 0; i < 3 * 1024 * 1024; i++)
        fputc('x', f);
    fputs("\"}\n{\"action\":\"vault.ls\",\"actor\":\"a\",\"outcome\":\"success\",\"time\":\"2026-01-01T00:00:00Z\"}", f);
    fclose(f);
    assert_int_equal(mv_audit_reader_open(path, &r, &err), MV_OK);
    assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_ERR_PARSE);
    assert_non_null(strstr(err.message, "line 1"));
    assert_non_null(strstr(err.message, "longer than 1 MiB"));
    assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_OK);
    assert_string_equal(ev.action, "vault.ls");
    assert_int_equal(mv_audit_reader_line(r), 2);
    assert_int_equal(mv_audit_reader_next(r, &ev, &err), MV_ERR_NOTFOUND);
    mv_audit_reader_free(r);
    unlink(path);
}

/* ---- DICOM messages ------------------------------------------------------------------------ */

static void test_codes(void **state)
{
    (void)state;
    assert_string_equal(mv_dicom_audit_code("vault.get")->event_id, "110103");
    assert_string_equal(mv_dicom_audit_code("vault.put")->event_id, "110107");
    assert_int_equal(mv_dicom_audit_code("vault.put")->action_code, 'C');
    assert_string_equal(mv_dicom_audit_code("vault.rm")->event_id, "110105");
    assert_int_equal(mv_dicom_audit_code("vault.rm")->action_code, 'D');
    assert_string_equal(mv_dicom_audit_code("vault.backup")->event_id, "110106");
    assert_string_equal(mv_dicom_audit_code("auth.unlock")->event_id, "110114");
    assert_string_equal(mv_dicom_audit_code("auth.unlock")->type_code, "110122");
    assert_string_equal(mv_dicom_audit_code("audit.alert")->event_id, "110113");
    assert_string_equal(mv_dicom_audit_code("reidentify")->event_id, "110110");
    assert_string_equal(mv_dicom_audit_code("no.such")->event_id, "110100");
    assert_string_equal(mv_dicom_audit_code(NULL)->event_id, "110100");
}

static void test_xml_escaping(void **state)
{
    const char *objects[] = {"a\"b<c>&d'e", "1.2.3"};
    MvAuditEvent ev;
    char *xml = NULL;
    size_t len = 0;
    MvError err;

    (void)state;
    memset(&ev, 0, sizeof ev);
    ev.action = "vault.get";
    ev.actor = "x<y>&\"z'\x01\t\xff\xc0\xaf\xed\xa0\x80";
    ev.objects = objects;
    ev.n_objects = 2;
    ev.outcome = "success";
    ev.time = "2026-01-01T01:00:00+01:00";
    ev.detail = "]]><!--\n";
    assert_int_equal(mv_dicom_audit_format(&ev, NULL, &xml, &len, &err), MV_OK);
    assert_int_equal(strlen(xml), len);
    if (strstr(xml, "UserID=\"x&lt;y&gt;&amp;&quot;z&apos;\xEF\xBF\xBD&#9;\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                    "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"") == NULL)
        fail_msg("actor not escaped as expected: %s", xml);
    assert_non_null(strstr(xml, "ParticipantObjectID=\"a&quot;b&lt;c&gt;&amp;d&apos;e\""));
    assert_non_null(strstr(xml, "<EventOutcomeDescription>]]&gt;&lt;!--&#10;</EventOutcomeDescription>"));
    assert_non_null(strstr(xml, "EventDateTime=\"2026-01-01T00:00:00.000000Z\""));
    assert_null(strstr(xml, "<?xml")); /* no declaration unless asked */
    free(xml);

    ev.outcome = "maybe";
    assert_int_equal(mv_dicom_audit_format(&ev, NULL, &xml, NULL, &err), MV_ERR_ARG);
    assert_null(xml);
    ev.outcome = "success";
    ev.time = "not a time";
    assert_int_equal(mv_dicom_audit_format(&ev, NULL, &xml, NULL, &err), MV_ERR_ARG);
    ev.time = "2026-01-01T00:00:00Z";
    ev.actor = NULL;
    assert_int_equal(mv_dicom_audit_format(&ev, NULL, &xml, NULL, &err), MV_ERR_ARG);
}

/* ---- Syslog -------------------------------------------------------------------------------- */

static void test_syslog_format(void **state)
{
    char *msg = NULL;
    size_t len = 0;
    MvError err;
    static const char want[] = "<85>1 2026-01-01T00:00:00.000000Z host_name medveil 42 IHE+RFC-3881 - "
                               "\xEF\xBB\xBF<AuditMessage/>";

    (void)state;
    assert_int_equal(mv_syslog_format(10, 5, "2026-01-01T00:00:00.000000Z", "host name", "medveil", "42",
                                      "IHE+RFC-3881", "<AuditMessage/>", 15, &msg, &len, &err),
                     MV_OK);
    assert_int_equal(len, sizeof want - 1);
    assert_memory_equal(msg, want, len);
    free(msg);
    assert_int_equal(mv_syslog_format(10, 4, NULL, NULL, "", NULL, NULL, "", 0, &msg, &len, &err), MV_OK);
    assert_string_equal(msg, "<84>1 - - - - - - \xEF\xBB\xBF");
    free(msg);
    assert_int_equal(mv_syslog_format(24, 0, NULL, NULL, NULL, NULL, NULL, "", 0, &msg, &len, &err), MV_ERR_ARG);
    assert_int_equal(mv_syslog_format(0, 8, NULL, NULL, NULL, NULL, NULL, "", 0, &msg, &len, &err), MV_ERR_ARG);
}

static void test_syslog_connect_errors(void **state)
{
    MvSyslogOptions o;
    MvSyslog *s = NULL;
    MvError err;

    (void)state;
    memset(&o, 0, sizeof o);
    assert_int_equal(mv_syslog_connect(&o, &s, &err), MV_ERR_ARG);
    o.host = "127.0.0.1";
    o.port = "6514";
    o.cert_file = "c.pem";
    assert_int_equal(mv_syslog_connect(&o, &s, &err), MV_ERR_ARG);
    o.cert_file = NULL;
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(mv_syslog_connect(&o, &s, &err), MV_ERR_ARG);
    assert_non_null(strstr(err.message, "/nonexistent/ca.pem"));
    assert_null(s);
    assert_int_equal(mv_syslog_close(NULL, &err), MV_OK);
}

/* ---- Alerts ---------------------------------------------------------------------------------- */

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/mv_audit_unit_XXXXXX");
    return mkdtemp(tmp_dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof path, "%s/a.conf", tmp_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/s.txt", tmp_dir);
    unlink(path);
    return rmdir(tmp_dir);
}

static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_config(void **state)
{
    MvAlertConfig cfg;
    MvError err;
    const char *path;

    (void)state;
    mv_alert_config_default(&cfg);
    assert_int_equal(cfg.unlock_max_failures, 5);
    write_file("s.txt", "# list\n1.2.3\n  vault-abc  # trailing comment\n\n");
    path = write_file("a.conf", "# thresholds\nvolume.k = 3.5\nunlock.max_failures=7\n"
                                "sensitive.file = s.txt\nsensitive.ids = 9.9, 8.8 7.7\nalerts.exempt_actors = svc\n");
    assert_int_equal(mv_alert_config_load(&cfg, path, &err), MV_OK);
    assert_true(cfg.volume_k == 3.5);
    assert_int_equal(cfg.unlock_max_failures, 7);
    assert_int_equal(cfg.n_sensitive, 5);
    assert_string_equal(cfg.sensitive[0], "1.2.3"); /* sorted */
    assert_string_equal(cfg.sensitive[4], "vault-abc");
    assert_int_equal(cfg.n_exempt, 1);
    mv_alert_config_clear(&cfg);

    mv_alert_config_default(&cfg);
    path = write_file("a.conf", "volume.k = 3\n\nvolume.min = -2\n");
    assert_int_equal(mv_alert_config_load(&cfg, path, &err), MV_ERR_ARG);
    assert_int_equal(err.offset, 3);
    assert_non_null(strstr(err.message, "line 3"));
    assert_non_null(strstr(err.message, "volume.min"));
    path = write_file("a.conf", "volume.kk = 3\n");
    assert_int_equal(mv_alert_config_load(&cfg, path, &err), MV_ERR_ARG);
    assert_non_null(strstr(err.message, "unknown key"));
    path = write_file("a.conf", "just words\n");
    assert_int_equal(mv_alert_config_load(&cfg, path, &err), MV_ERR_ARG);
    path = write_file("a.conf", "offhours.max_share = 1.5\n");
    assert_int_equal(mv_alert_config_load(&cfg, path, &err), MV_ERR_ARG);
    path = write_file("a.conf", "sensitive.file = missing.txt\n");
    assert_int_equal(mv_alert_config_load(&cfg, path, &err), MV_ERR_ARG);
    assert_non_null(strstr(err.message, "missing.txt"));
    mv_alert_config_clear(&cfg);
}

/* Scans the log text with cfg; returns the alert list (caller clears). */
static MvAlertList scan(const char *text, const MvAlertConfig *cfg, int64_t since)
{
    MvAuditReader *r = NULL;
    MvAlertList list;
    MvError err;

    assert_int_equal(mv_audit_reader_open_mem(text, strlen(text), "test", &r, &err), MV_OK);
    if (mv_alerts_scan_reader(r, cfg, since, &list, &err) != MV_OK)
        fail_msg("scan failed: %s", err.message);
    mv_audit_reader_free(r);
    return list;
}

#define UNLOCK(t) "{\"action\":\"auth.unlock\",\"actor\":\"eve\",\"outcome\":\"failure\",\"time\":\"" t "\"}\n"

static void test_unlock_rule(void **state)
{
    MvAlertConfig cfg;
    MvAlertList list;
    char *json;

    (void)state;
    mv_alert_config_default(&cfg);
    /* Four failures in 15 minutes, then the fifth 16 minutes after the first: no alert. */
    list = scan(UNLOCK("2026-01-01T10:00:00Z") UNLOCK("2026-01-01T10:01:00Z") UNLOCK("2026-01-01T10:02:00Z")
                    UNLOCK("2026-01-01T10:03:00Z") UNLOCK("2026-01-01T10:16:00Z"),
                &cfg, INT64_MIN);
    assert_int_equal(list.n_items, 0);
    assert_int_equal(list.n_events, 5);
    mv_alert_list_clear(&list);
    /* Five within the window: one alert, widened (not repeated) by the sixth. */
    list = scan(UNLOCK("2026-01-01T10:00:00Z") UNLOCK("2026-01-01T10:01:00Z") UNLOCK("2026-01-01T10:02:00Z")
                    UNLOCK("2026-01-01T10:03:00Z") UNLOCK("2026-01-01T10:04:00Z") UNLOCK("2026-01-01T10:05:00Z")
                    "{\"action\":\"auth.unlock\",\"actor\":\"eve\",\"outcome\":\"success\",\"time\":\"2026-01-01T10:06:00Z\"}\n",
                &cfg, INT64_MIN);
    assert_int_equal(list.n_items, 1);
    assert_string_equal(list.items[0].rule, "unlock");
    assert_string_equal(list.items[0].actor, "eve");
    assert_string_equal(list.items[0].day, "2026-01-01");
    assert_true(list.items[0].observed == 6);
    json = mv_alert_to_json(&list.items[0]);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"rule\":\"unlock\""));
    assert_non_null(strstr(json, "\"start\":\"2026-01-01T10:00:00.000000Z\""));
    free(json);
    mv_alert_list_clear(&list);
    /* --since after the events: nothing reported. */
    {
        int64_t since;
        assert_int_equal(mv_audit_time_parse("2026-01-02", &since), MV_OK);
        list = scan(UNLOCK("2026-01-01T10:00:00Z") UNLOCK("2026-01-01T10:01:00Z") UNLOCK("2026-01-01T10:02:00Z")
                        UNLOCK("2026-01-01T10:03:00Z") UNLOCK("2026-01-01T10:04:00Z"),
                    &cfg, since);
        assert_int_equal(list.n_items, 0);
        mv_alert_list_clear(&list);
    }
}

static int count_logged;
static int append_count(void *ctx, const MvAuditEvent *ev)
{
    (void)ctx;
    assert_string_equal(ev->action, "audit.alert");
    assert_non_null(strstr(ev->detail, "rule="));
    count_logged++;
    return count_logged > 1 ? -1 : 0;
}

static void test_bulk_and_sensitive(void **state)
{
    MvAlertConfig cfg;
    MvAlertList list;
    MvError err;
    static const char log[] =
        "{\"action\":\"vault.get\",\"actor\":\"bob\",\"objects\":[\"a\",\"b\",\"c\"],\"outcome\":\"success\","
        "\"time\":\"2026-01-01T10:00:00Z\"}\n"
        "{\"action\":\"vault.get\",\"actor\":\"bob\",\"objects\":[\"d\",\"e\",\"study:1.2.3\"],\"outcome\":\"success\","
        "\"time\":\"2026-01-01T10:30:00Z\"}\n"
        "{\"action\":\"vault.get\",\"actor\":\"svc\",\"objects\":[\"1.2.3\",\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"],"
        "\"outcome\":\"success\",\"time\":\"2026-01-01T10:40:00Z\"}\n"
        "{\"action\":\"audit.alert\",\"actor\":\"auditor\",\"objects\":[\"1.2.3\"],\"outcome\":\"success\","
        "\"time\":\"2026-01-01T11:00:00Z\"}\n"
        "{\"action\":\"vault.ls\",\"actor\":\"carl\",\"objects\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"],"
        "\"outcome\":\"success\",\"time\":\"2026-01-01T11:00:00Z\"}\n";

    (void)state;
    mv_alert_config_default(&cfg);
    cfg.bulk_max_objects = 5;
    cfg.sensitive = calloc(1, sizeof *cfg.sensitive);
    cfg.sensitive[0] = strdup("1.2.3");
    cfg.n_sensitive = 1;
    cfg.exempt_actors = calloc(1, sizeof *cfg.exempt_actors);
    cfg.exempt_actors[0] = strdup("svc");
    cfg.n_exempt = 1;
    list = scan(log, &cfg, INT64_MIN);
    /* bob: 6 objects read out in 30 minutes (> 5) and a sensitive study (prefix stripped); svc is
     * exempt; the audit.alert event and carl's listing (not a read-out) raise nothing. */
    assert_int_equal(list.n_items, 2);
    assert_string_equal(list.items[0].rule, "bulk"); /* in order of start: the window began at 10:00 */
    assert_string_equal(list.items[1].rule, "sensitive");
    assert_string_equal(list.items[1].actor, "bob");
    assert_int_equal(list.items[1].n_objects, 1);
    assert_string_equal(list.items[1].objects[0], "study:1.2.3");
    assert_true(list.items[0].observed == 6);
    count_logged = 0;
    assert_int_equal(mv_alerts_log(&list, "auditor", append_count, NULL, &err), MV_ERR_IO);
    assert_int_equal(count_logged, 2);
    mv_alert_list_clear(&list);
    mv_alert_config_clear(&cfg);
}

static void test_volume_rule(void **state)
{
    MvAlertConfig cfg;
    MvAlertList list;
    char *log = malloc(1 << 20);
    size_t len = 0;

    (void)state;
    assert_non_null(log);
    mv_alert_config_default(&cfg);
    /* 20 working days of 20 accesses at 09:00-09:19, then a day of 120. */
    for (int d = 1; d <= 21; d++) {
        int n = d == 21 ? 120 : 20;
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(log + len, (1 << 20) - len,
                                    "{\"action\":\"vault.get\",\"actor\":\"ann\",\"objects\":[\"o%d\"],"
                                    "\"outcome\":\"success\",\"time\":\"2026-03-%02dT09:%02d:%02dZ\"}\n",
                                    i % 7, d, i / 60, i % 60);
    }
    list = scan(log, &cfg, INT64_MIN);
    assert_int_equal(list.n_items, 1);
    assert_string_equal(list.items[0].rule, "volume");
    assert_string_equal(list.items[0].day, "2026-03-21");
    assert_true(list.items[0].observed == 120);
    assert_true(list.items[0].baseline_mean == 20);
    assert_true(list.n_actor_days == 21);
    mv_alert_list_clear(&list);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_reader_long_line),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_xml_escaping),
        cmocka_unit_test(test_syslog_format),
        cmocka_unit_test(test_syslog_connect_errors),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_unlock_rule),
        cmocka_unit_test(test_bulk_and_sensitive),
        cmocka_unit_test(test_volume_rule),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
