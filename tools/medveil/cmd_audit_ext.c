/* `medveil audit export` (the log as DICOM audit messages, to a file, a folder or an ATNA syslog
 * server over TLS) and `medveil audit alerts` (misuse rules over the log, each alert printed and
 * logged as an audit.alert event). Both read HOME/audit/events.jsonl through the public API of
 * include/medveil/audit_export.h; the audit command's dispatcher calls them. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_audit_ext.h"
#include "medveil/audit_export.h"

#define FACILITY_SECURITY 10 /* RFC 5424 "security/authorization messages", as IHE ITI-20 asks */
#define SEVERITY_WARNING 4
#define SEVERITY_NOTICE 5

/* ---- export ------------------------------------------------------------------------------ */

void help_audit_export(FILE *out)
{
    fprintf(out,
            "usage: %s audit export [--format dicom] [--since T] [-o FILE | --dir DIR]\n"
            "       %s audit export [--format dicom] [--since T] --syslog HOST:PORT --tls\n"
            "                       [--ca FILE] [--cert FILE --key FILE]\n"
            "\n"
            "Writes the events of the audit log as DICOM audit messages (PS3.15 A.5, the schema\n"
            "derived from RFC 3881 that audit record repositories read): one AuditMessage per\n"
            "event, with the DCM event ID of the action (vault.get is 110103 DICOM Instances\n"
            "Accessed, vault.put 110107 Import, vault.rm 110105 DICOM Study Deleted, auth.unlock\n"
            "110114 User Authentication, audit.alert 110113 Security Alert ...; the table is in\n"
            "docs/audit-export.md), the actor as the requesting participant, the host as the audit\n"
            "source, and one participant object per vault id or UID. Objects are opaque ids: no\n"
            "patient name or ID is ever in a message.\n"
            "\n"
            "Where the messages go (one of):\n"
            "  -o, --output FILE     one message per line, to FILE ('-' or none: standard output);\n"
            "                        written to a temporary name and renamed when complete\n"
            "      --dir DIR         one XML document per event, DIR/event-SEQ.xml\n"
            "      --syslog HOST:PORT  send each message as RFC 5424 syslog (facility 10, APP-NAME\n"
            "                        medveil, MSGID IHE+RFC-3881) over TLS with RFC 5425 framing,\n"
            "                        as IHE ATNA audit repositories expect ([HOST]:PORT for IPv6)\n"
            "      --tls             required with --syslog: audit messages never travel in clear\n"
            "      --ca FILE         PEM certificates that the server's certificate must chain to\n"
            "                        (default: the system's trust store); its name must match HOST\n"
            "      --cert FILE, --key FILE  client certificate and key for mutual TLS\n"
            "\n"
            "Other options:\n"
            "      --format dicom    the message format (the only one so far)\n"
            "      --since T         only events at or after T (RFC 3339, or a date YYYY-MM-DD)\n"
            "      --site ID         AuditEnterpriseSiteID of every message (your institution)\n"
            "      --home DIR        home folder (default $MEDVEIL_HOME, else ./.medveil)\n"
            "  -h, --help            this help\n"
            "\n"
            "The export is itself logged, as an audit.export event.\n"
            "Exit status: 0 all exported; 1 some lines of the log were malformed (named by line\n"
            "number and skipped) or the server could not be reached or written to; 2 usage error;\n"
            "3 the server's certificate is not trusted, or the export could not be logged.\n",
            cli_program, cli_program);
}

typedef struct ExportRun {
    const char *out_path;      /* -o */
    const char *dir;           /* --dir */
    FILE *out;
    char *tmp_path;
    MvSyslog *syslog;
    MvDicomAuditOptions dicom;
    int64_t since_us;
    unsigned long n_exported, n_bad;
} ExportRun;

/* Splits "HOST:PORT" or "[V6]:PORT" in place. */
static int split_host_port(char *text, char **host, char **port)
{
    char *colon;

    if (text[0] == '[') {
        char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        *close = '\0';
        *host = text + 1;
        *port = close + 2;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return -1;
        *colon = '\0';
        *host = text;
        *port = colon + 1;
    }
    if (**host == '\0' || **port == '\0' || strspn(*port, "0123456789") != strlen(*port))
        return -1;
    return 0;
}

/* Writes one document to DIR/event-SEQ.xml (via a temporary name). 0 or -1 after reporting. */
static int write_event_file(const char *dir, const MvAuditEvent *ev, unsigned long index, const char *xml,
                            size_t len)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    FILE *f;
    int ok, n;

    if (ev->seq >= 0)
        n = snprintf(path, sizeof path, "%s/event-%09lld.xml", dir, (long long)ev->seq);
    else
        n = snprintf(path, sizeof path, "%s/event-line-%09lu.xml", dir, index);
    if (n < 0 || (size_t)n >= sizeof path) {
        cli_error("audit export", "%s: folder name too long", dir);
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (f == NULL) {
        cli_error("audit export", "%s: cannot write: %s", tmp, strerror(errno));
        return -1;
    }
    ok = fwrite(xml, 1, len, f) == len && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        cli_error("audit export", "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Exports one event; returns an exit status (0 to go on). */
static int export_event(ExportRun *run, const MvAuditEvent *ev, unsigned long line)
{
    char *xml = NULL, *msg = NULL;
    size_t len = 0, msg_len = 0;
    MvError err;
    MvStatus st;
    int rc = MV_EXIT_OK;

    mv_error_clear(&err);
    run->dicom.xml_declaration = run->dir != NULL;
    st = mv_dicom_audit_format(ev, &run->dicom, &xml, &len, &err);
    if (st != MV_OK) {
        cli_error("audit export", "events.jsonl line %lu: %s", line, err.message);
        run->n_bad++;
        return MV_EXIT_OK;
    }
    if (run->syslog != NULL) {
        char when[40], pid[24];
        int severity = strcmp(ev->action, "audit.alert") == 0 || strcmp(ev->outcome, "denied") == 0
                           ? SEVERITY_WARNING
                           : SEVERITY_NOTICE;
        mv_audit_time_format(ev->time_us, when, sizeof when);
        snprintf(pid, sizeof pid, "%ld", (long)getpid());
        st = mv_syslog_format(FACILITY_SECURITY, severity, when, ev->host, "medveil", pid, "IHE+RFC-3881", xml, len,
                              &msg, &msg_len, &err);
        if (st == MV_OK)
            st = mv_syslog_send(run->syslog, msg, msg_len, &err);
        if (st != MV_OK) {
            cli_error("audit export", "%s", err.message);
            rc = MV_EXIT_PARTIAL;
        }
    } else if (run->dir != NULL) {
        if (write_event_file(run->dir, ev, line, xml, len) != 0)
            rc = MV_EXIT_PARTIAL;
    } else {
        if (fwrite(xml, 1, len, run->out) != len || fputc('\n', run->out) == EOF) {
            cli_error("audit export", "%s: write failed: %s", run->tmp_path ? run->tmp_path : "standard output",
                      strerror(errno));
            rc = MV_EXIT_PARTIAL;
        }
    }
    if (rc == MV_EXIT_OK)
        run->n_exported++;
    free(msg);
    free(xml);
    return rc;
}

int cli_audit_export(int argc, char **argv)
{
    enum { OPT_FORMAT = 256, OPT_SINCE, OPT_DIR, OPT_SYSLOG, OPT_TLS, OPT_CA, OPT_CERT, OPT_KEY, OPT_SITE, OPT_HOME };
    static const struct option longopts[] = {
        {"format", required_argument, NULL, OPT_FORMAT}, {"since", required_argument, NULL, OPT_SINCE},
        {"output", required_argument, NULL, 'o'},        {"dir", required_argument, NULL, OPT_DIR},
        {"syslog", required_argument, NULL, OPT_SYSLOG}, {"tls", no_argument, NULL, OPT_TLS},
        {"ca", required_argument, NULL, OPT_CA},         {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},       {"site", required_argument, NULL, OPT_SITE},
        {"home", required_argument, NULL, OPT_HOME},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "audit export", *format = "dicom", *home_opt = NULL, *since = NULL;
    char *syslog_target = NULL, *host = NULL, *port = NULL, events_path[PATH_MAX], detail[PATH_MAX + 64];
    int tls = 0, c, rc = MV_EXIT_OK;
    MvSyslogOptions so;
    ExportRun run;
    MvAuditReader *reader = NULL;
    MvAuditEvent ev;
    MvError err;
    MvStatus st;
    const char *home;

    memset(&run, 0, sizeof run);
    memset(&so, 0, sizeof so);
    mv_error_clear(&err);
    run.since_us = INT64_MIN;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_FORMAT: format = optarg; break;
        case OPT_SINCE: since = optarg; break;
        case 'o': run.out_path = optarg; break;
        case OPT_DIR: run.dir = optarg; break;
        case OPT_SYSLOG: syslog_target = optarg; break;
        case OPT_TLS: tls = 1; break;
        case OPT_CA: so.ca_file = optarg; break;
        case OPT_CERT: so.cert_file = optarg; break;
        case OPT_KEY: so.key_file = optarg; break;
        case OPT_SITE: run.dicom.enterprise_site_id = optarg; break;
        case OPT_HOME: home_opt = optarg; break;
        case 'h': help_audit_export(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (strcmp(format, "dicom") != 0)
        return cli_usage_error(cmd, "unknown --format '%s' (known: dicom)", format);
    if (since != NULL && mv_audit_time_parse(since, &run.since_us) != MV_OK)
        return cli_usage_error(cmd, "--since '%s' is not an RFC 3339 time or a YYYY-MM-DD date", since);
    if ((run.out_path != NULL) + (run.dir != NULL) + (syslog_target != NULL) > 1)
        return cli_usage_error(cmd, "choose one of -o, --dir and --syslog");
    if (syslog_target != NULL && !tls)
        return cli_usage_error(cmd, "--syslog needs --tls: audit messages are not sent in clear text");
    if (syslog_target == NULL && (tls || so.ca_file || so.cert_file || so.key_file))
        return cli_usage_error(cmd, "--tls, --ca, --cert and --key go with --syslog");
    if ((so.cert_file == NULL) != (so.key_file == NULL))
        return cli_usage_error(cmd, "--cert and --key go together");
    if (syslog_target != NULL && split_host_port(syslog_target, &host, &port) != 0)
        return cli_usage_error(cmd, "--syslog wants HOST:PORT, got '%s'", syslog_target);

    home = cli_home(home_opt);
    snprintf(events_path, sizeof events_path, "%s/audit/events.jsonl", home);
    st = mv_audit_reader_open(events_path, &reader, &err);
    if (st != MV_OK) {
        cli_error(cmd, "%s", err.message);
        return st == MV_ERR_NOTFOUND ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
    }

    if (syslog_target != NULL) {
        /* A server that closes the connection must give an error, not kill the process:
         * OpenSSL writes to the socket without MSG_NOSIGNAL. */
        signal(SIGPIPE, SIG_IGN);
        so.host = host;
        so.port = port;
        st = mv_syslog_connect(&so, &run.syslog, &err);
        if (st != MV_OK) {
            cli_error(cmd, "%s", err.message);
            rc = st == MV_ERR_INTEGRITY ? MV_EXIT_SECURITY : st == MV_ERR_ARG ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
            goto out;
        }
    } else if (run.dir != NULL) {
        if (cli_mkdirs(run.dir) != 0) {
            cli_error(cmd, "%s: cannot create: %s", run.dir, strerror(errno));
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
    } else if (run.out_path != NULL && strcmp(run.out_path, "-") != 0) {
        size_t n = strlen(run.out_path) + 16;
        run.tmp_path = malloc(n);
        if (run.tmp_path == NULL) {
            cli_error(cmd, "out of memory");
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        snprintf(run.tmp_path, n, "%s.tmp%ld", run.out_path, (long)getpid());
        run.out = fopen(run.tmp_path, "wb");
        if (run.out == NULL) {
            cli_error(cmd, "%s: cannot write: %s", run.tmp_path, strerror(errno));
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
    } else {
        run.out = stdout;
    }

    for (;;) {
        st = mv_audit_reader_next(reader, &ev, &err);
        if (st == MV_ERR_NOTFOUND)
            break;
        if (st == MV_ERR_PARSE) {
            cli_error(cmd, "%s (skipped)", err.message);
            run.n_bad++;
            continue;
        }
        if (st != MV_OK) {
            cli_error(cmd, "%s", err.message);
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
        if (ev.time_us < run.since_us)
            continue;
        rc = export_event(&run, &ev, (unsigned long)mv_audit_reader_line(reader));
        if (rc != MV_EXIT_OK)
            goto out;
    }
    if (run.syslog != NULL) {
        st = mv_syslog_close(run.syslog, &err);
        run.syslog = NULL;
        if (st != MV_OK) {
            cli_error(cmd, "%s", err.message);
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
    }
    if (run.tmp_path != NULL) {
        FILE *f = run.out;
        run.out = NULL;
        if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(run.tmp_path, run.out_path) != 0) {
            cli_error(cmd, "%s: cannot write: %s", run.out_path, strerror(errno));
            rc = MV_EXIT_PARTIAL;
            goto out;
        }
    } else if (run.out == stdout && fflush(stdout) != 0) {
        cli_error(cmd, "standard output: write failed: %s", strerror(errno));
        rc = MV_EXIT_PARTIAL;
        goto out;
    }

    /* The export is an access to the audit log: it is logged before it is reported. */
    snprintf(detail, sizeof detail, "%lu events as DICOM audit messages to %s%s", run.n_exported,
             syslog_target != NULL ? "syslog+tls " : run.dir != NULL ? "folder " : "file ",
             syslog_target != NULL ? so.host : run.dir != NULL ? run.dir : run.out_path ? run.out_path : "stdout");
    {
        CliAuditEvent ae;
        memset(&ae, 0, sizeof ae);
        ae.action = "audit.export";
        ae.outcome = "success";
        ae.detail = detail;
        if (cli_audit(home, &ae) != 0) {
            rc = MV_EXIT_SECURITY;
            goto out;
        }
    }
    fprintf(stderr, "%s %s: %lu event(s) exported", cli_program, cmd, run.n_exported);
    if (run.n_bad > 0)
        fprintf(stderr, ", %lu malformed line(s) skipped", run.n_bad);
    fputc('\n', stderr);
    rc = run.n_bad > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
out:
    if (run.syslog != NULL)
        mv_syslog_close(run.syslog, NULL);
    if (run.tmp_path != NULL) {
        if (run.out != NULL) {
            fclose(run.out);
            unlink(run.tmp_path);
        }
        free(run.tmp_path);
    }
    mv_audit_reader_free(reader);
    return rc;
}

/* ---- alerts ------------------------------------------------------------------------------ */

void help_audit_alerts(FILE *out)
{
    fprintf(out,
            "usage: %s audit alerts [--since T] [--config FILE] [--json] [--no-log]\n"
            "\n"
            "Looks for misuse in the audit log with rules and per-actor baselines (each actor is\n"
            "compared with their own previous days, 30 by default):\n"
            "  volume     far more accesses in a day than the actor's usual (median + k*sd, floored)\n"
            "  distinct   many distinct studies/objects within one window (default an hour)\n"
            "  bulk       more than N objects read out (get, backup, deid, reidentify) in a window\n"
            "  offhours   accesses at hours the actor (almost) never works\n"
            "  unlock     repeated failed unlocks in a short time\n"
            "  sensitive  any access to an object on the sensitive list\n"
            "Events carry no patient identifiers, so 'many patients' is judged by distinct\n"
            "objects (studies, vault ids). Thresholds come from a key = value file; every key,\n"
            "its default and the reasoning are in docs/audit-export.md. Each alert is printed\n"
            "and logged as an audit.alert event (DICOM 110113 Security Alert on export).\n"
            "\n"
            "Options:\n"
            "      --since T         report alerts from T on (RFC 3339 or YYYY-MM-DD); baselines\n"
            "                        still use all of the history\n"
            "      --config FILE     thresholds (default HOME/audit/alerts.conf if present)\n"
            "      --json            one JSON document: alerts, events, actor_days, bad_lines\n"
            "      --no-log          print only; do not log audit.alert events\n"
            "      --home DIR        home folder (default $MEDVEIL_HOME, else ./.medveil)\n"
            "  -h, --help            this help\n"
            "\n"
            "Exit status: 0 no alert; 3 at least one alert; 1 no alert but malformed lines were\n"
            "skipped; 2 usage or configuration error (also: no audit log). Logging an alert that\n"
            "fails is a security failure (3).\n",
            cli_program);
}

/* The MvAuditAppendFn of the CLI: the durable audit hook. */
static int append_with_cli_audit(void *ctx, const MvAuditEvent *ev)
{
    const char *home = ctx;
    CliAuditEvent ae;

    memset(&ae, 0, sizeof ae);
    ae.action = ev->action;
    ae.objects = ev->objects;
    ae.n_objects = ev->n_objects;
    ae.outcome = ev->outcome;
    ae.actor = ev->actor;
    ae.purpose = ev->purpose;
    ae.detail = ev->detail;
    return cli_audit(home, &ae);
}

int cli_audit_alerts(int argc, char **argv)
{
    enum { OPT_SINCE = 256, OPT_CONFIG, OPT_JSON, OPT_NO_LOG, OPT_HOME };
    static const struct option longopts[] = {
        {"since", required_argument, NULL, OPT_SINCE}, {"config", required_argument, NULL, OPT_CONFIG},
        {"json", no_argument, NULL, OPT_JSON},         {"no-log", no_argument, NULL, OPT_NO_LOG},
        {"home", required_argument, NULL, OPT_HOME},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "audit alerts", *home_opt = NULL, *since = NULL, *config = NULL, *home;
    char events_path[PATH_MAX], default_config[PATH_MAX];
    int json = 0, no_log = 0, c, rc = MV_EXIT_OK;
    int64_t since_us = INT64_MIN;
    MvAlertConfig cfg;
    MvAlertList list;
    MvError err;
    MvStatus st;

    memset(&list, 0, sizeof list);
    mv_alert_config_default(&cfg);
    mv_error_clear(&err);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SINCE: since = optarg; break;
        case OPT_CONFIG: config = optarg; break;
        case OPT_JSON: json = 1; break;
        case OPT_NO_LOG: no_log = 1; break;
        case OPT_HOME: home_opt = optarg; break;
        case 'h': help_audit_alerts(stdout); return MV_EXIT_OK;
        case ':': return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default: return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (since != NULL && mv_audit_time_parse(since, &since_us) != MV_OK)
        return cli_usage_error(cmd, "--since '%s' is not an RFC 3339 time or a YYYY-MM-DD date", since);
    home = cli_home(home_opt);
    if (config == NULL) {
        snprintf(default_config, sizeof default_config, "%s/audit/alerts.conf", home);
        if (access(default_config, F_OK) == 0)
            config = default_config;
    }
    if (config != NULL && mv_alert_config_load(&cfg, config, &err) != MV_OK) {
        cli_error(cmd, "%s", err.message);
        rc = MV_EXIT_USAGE;
        goto out;
    }
    snprintf(events_path, sizeof events_path, "%s/audit/events.jsonl", home);
    st = mv_alerts_scan(events_path, &cfg, since_us, &list, &err);
    if (st != MV_OK) {
        cli_error(cmd, "%s", err.message);
        rc = st == MV_ERR_NOTFOUND ? MV_EXIT_USAGE : MV_EXIT_PARTIAL;
        goto out;
    }
    if (json) {
        printf("{\"actor_days\":%llu,\"alerts\":[", (unsigned long long)list.n_actor_days);
        for (size_t i = 0; i < list.n_items; i++) {
            char *text = mv_alert_to_json(&list.items[i]);
            if (text == NULL) {
                cli_error(cmd, "out of memory");
                rc = MV_EXIT_PARTIAL;
                goto out;
            }
            printf("%s%s", i > 0 ? "," : "", text);
            free(text);
        }
        printf("],\"bad_lines\":%llu,\"events\":%llu}\n", (unsigned long long)list.n_bad_lines,
               (unsigned long long)list.n_events);
    } else {
        for (size_t i = 0; i < list.n_items; i++) {
            const MvAlert *a = &list.items[i];
            printf("ALERT %-9s %-16s %s  %s\n", a->rule, a->actor, a->day, a->summary);
            for (size_t j = 0; j < a->n_objects; j++)
                printf("      object %s\n", a->objects[j]);
        }
        printf("%zu alert(s) over %llu event(s), %llu actor-day(s)", list.n_items,
               (unsigned long long)list.n_events, (unsigned long long)list.n_actor_days);
        if (list.n_bad_lines > 0)
            printf(", %llu malformed line(s) skipped", (unsigned long long)list.n_bad_lines);
        putchar('\n');
    }
    if (fflush(stdout) != 0) {
        cli_error(cmd, "standard output: write failed: %s", strerror(errno));
        rc = MV_EXIT_PARTIAL;
        goto out;
    }
    if (!no_log && list.n_items > 0) {
        st = mv_alerts_log(&list, NULL, append_with_cli_audit, (void *)home, &err);
        if (st != MV_OK) {
            cli_error(cmd, "%s", err.message);
            rc = MV_EXIT_SECURITY;
            goto out;
        }
    }
    rc = list.n_items > 0 ? MV_EXIT_SECURITY : list.n_bad_lines > 0 ? MV_EXIT_PARTIAL : MV_EXIT_OK;
out:
    mv_alert_list_clear(&list);
    mv_alert_config_clear(&cfg);
    return rc;
}
