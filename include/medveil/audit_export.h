/* The audit log in the hospital's language (issue 6): a streaming reader of HOME/audit/events.jsonl,
 * each event as a DICOM audit message (PS3.15 A.5, the RFC 3881-derived schema), delivery of those
 * messages to an ATNA audit repository as RFC 5424 syslog over TLS (RFC 5425 framing), and rules
 * with per-actor baselines that notice misuse. Objects in events are opaque vault ids or UIDs,
 * never names; nothing here prints or logs a patient value. Docs: docs/audit-export.md. */
#ifndef MEDVEIL_AUDIT_EXPORT_H
#define MEDVEIL_AUDIT_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "medveil/audit.h"
#include "medveil/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Events -------------------------------------------------------------------------- */

/* One event of the log: MvAuditEvent of medveil/audit.h (the on-disk contract: one canonical JSON
 * object per line). Every string of an event read here is valid until the next
 * mv_audit_reader_next or mv_audit_reader_free on the reader that produced it. */

/* Parses an RFC 3339 date-time ("2026-11-27T07:30:00.123456Z", "...+01:00", fraction optional)
 * or a bare date "2026-11-27" (midnight UTC) into microseconds since the epoch. MV_ERR_PARSE if
 * text is anything else. */
MvStatus mv_audit_time_parse(const char *text, int64_t *us_out);
/* Writes us as "YYYY-MM-DDThh:mm:ss.uuuuuuZ" into buf (at least 28 bytes). */
void mv_audit_time_format(int64_t us, char *buf, size_t cap);

typedef struct MvAuditReader MvAuditReader;

/* Opens an events.jsonl file for reading line by line (memory stays bounded by the longest
 * line, at most MV_AUDIT_MAX_LINE bytes). On failure *out is NULL. */
#define MV_AUDIT_MAX_LINE (1u << 20)
MvStatus mv_audit_reader_open(const char *path, MvAuditReader **out, MvError *err);
/* The same over bytes in memory (not copied: buf must outlive the reader). name appears in errors. */
MvStatus mv_audit_reader_open_mem(const char *buf, size_t len, const char *name, MvAuditReader **out,
                                  MvError *err);
/* Reads the next event into *ev. MV_ERR_NOTFOUND at the end of the log. A malformed line gives
 * MV_ERR_PARSE with the line number in err->offset and a message naming file, line and key; the
 * reader stays usable and the next call reads the following line. */
MvStatus mv_audit_reader_next(MvAuditReader *r, MvAuditEvent *ev, MvError *err);
/* The number of the line last read (1-based). */
uint64_t mv_audit_reader_line(const MvAuditReader *r);
/* NULL is accepted. */
void mv_audit_reader_free(MvAuditReader *r);

/* A caller-provided way to append an event to the audit log (the CLI passes one that calls its
 * durable audit hook). Only action, actor, objects, outcome, purpose and detail are meaningful to
 * it; time, seq and host are assigned by the log. Returns 0, or -1 if the event was not written. */
typedef int (*MvAuditAppendFn)(void *ctx, const MvAuditEvent *ev);

/* ---- DICOM audit messages (PS3.15 A.5) ---------------------------------------------------- */

typedef struct MvDicomAuditOptions {
    const char *enterprise_site_id; /* AuditEnterpriseSiteID; NULL: omitted */
    const char *source_id;          /* AuditSourceID when the event has no host; NULL: "medveil" */
    int xml_declaration;            /* nonzero: start with <?xml version="1.0" encoding="UTF-8"?> */
} MvDicomAuditOptions;

/* The DICOM event an action maps to (docs/audit-export.md has the table). */
typedef struct MvDicomEventCode {
    const char *event_id;       /* DCM code value, e.g. "110103" */
    const char *event_meaning;  /* e.g. "DICOM Instances Accessed" */
    char action_code;           /* 'C', 'R', 'U', 'D' or 'E' */
    const char *type_code;      /* DCM EventTypeCode value, or NULL */
    const char *type_meaning;   /* its meaning, or NULL */
    int life_cycle;             /* ParticipantObjectDataLifeCycle of the objects, 0: omitted */
} MvDicomEventCode;
/* The mapping for action (unknown actions map to 110100 Application Activity, 'E'). Never NULL. */
const MvDicomEventCode *mv_dicom_audit_code(const char *action);

/* Formats ev as one AuditMessage document. opt may be NULL (defaults). *xml_out is malloc'd,
 * NUL-terminated, *len_out bytes without the NUL (len_out may be NULL); the caller frees it. On
 * failure *xml_out is NULL. Text is escaped for XML; characters XML 1.0 cannot carry (control
 * characters, invalid UTF-8) are replaced by U+FFFD. MV_ERR_ARG when a mandatory field (action,
 * actor, outcome, time) is missing or the outcome is not one of the three of the contract. */
MvStatus mv_dicom_audit_format(const MvAuditEvent *ev, const MvDicomAuditOptions *opt, char **xml_out,
                               size_t *len_out, MvError *err);

/* ---- Syslog over TLS (RFC 5424 messages, RFC 5425 transport) ---------------------------------- */

typedef struct MvSyslogOptions {
    const char *host;       /* server name or address; the certificate must match it */
    const char *port;       /* e.g. "6514" */
    const char *ca_file;    /* PEM trust anchors; NULL: the system's default store */
    const char *cert_file;  /* client certificate (PEM), NULL: none; needs key_file */
    const char *key_file;   /* its private key (PEM) */
    int timeout_ms;         /* connect and write timeout; 0: 10000 */
} MvSyslogOptions;

typedef struct MvSyslog MvSyslog;

/* Connects over TCP and performs the TLS handshake (TLS 1.2 at least), verifying the server's
 * chain against ca_file and its name against host. A certificate that does not verify is
 * MV_ERR_INTEGRITY; a refused or unreachable server MV_ERR_IO; bad options or unreadable PEM
 * files MV_ERR_ARG. On failure *out is NULL. */
MvStatus mv_syslog_connect(const MvSyslogOptions *opt, MvSyslog **out, MvError *err);

/* Builds one RFC 5424 message: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM MSG".
 * facility/severity make PRI (facility 10 = security/authorization). timestamp is RFC 3339 (NULL:
 * "-"), hostname/app_name/procid/msgid are printable US-ASCII without spaces (others are
 * replaced by '_'; NULL or empty: "-"; cut to the RFC's lengths). msg (msg_len bytes, UTF-8) follows
 * a UTF-8 BOM. *out is malloc'd (NUL-terminated), *out_len its length. */
MvStatus mv_syslog_format(int facility, int severity, const char *timestamp, const char *hostname,
                          const char *app_name, const char *procid, const char *msgid, const char *msg,
                          size_t msg_len, char **out, size_t *out_len, MvError *err);

/* Sends one message with octet-counting framing (RFC 5425 4.3: "MSG-LEN SP SYSLOG-MSG"). */
MvStatus mv_syslog_send(MvSyslog *s, const char *msg, size_t len, MvError *err);

/* Closes the TLS session cleanly (close_notify) and frees. NULL is accepted. Returns MV_ERR_IO if
 * the shutdown failed (messages already sent may then be lost by the server). */
MvStatus mv_syslog_close(MvSyslog *s, MvError *err);

/* ---- Misuse alerts ----------------------------------------------------------------------- */

/* Thresholds; every field has a default (mv_alert_config_default) and a key of the config file
 * (key = value lines, '#' comments; docs/audit-export.md lists them). */
typedef struct MvAlertConfig {
    int baseline_days;          /* baseline.days: history a baseline looks back on (30) */
    int baseline_min_days;      /* baseline.min_days: active days needed before baselines judge (7) */
    double volume_k;            /* volume.k: day count > median + k*sd of the actor's previous
                                   active days, sd robust: 1.4826 * MAD (4) */
    int volume_min;             /* volume.min: and at least this many events that day (40) */
    double volume_factor;       /* volume.factor: and more than factor * median (2.5) */
    int distinct_window_s;      /* distinct.window: seconds per window (3600) */
    double distinct_k;          /* distinct.k: the day's busiest window > median + k*sd (4) */
    int distinct_min;           /* distinct.min: and at least this many (30) */
    double distinct_factor;     /* distinct.factor: and more than factor * median (2.5) */
    int bulk_window_s;          /* bulk.window: sliding window in seconds (3600) */
    int bulk_max_objects;       /* bulk.max_objects: more objects than this read out in a window (200) */
    int offhours_min_events;    /* offhours.min_events: baseline events needed to judge hours (100) */
    double offhours_max_share;  /* offhours.max_share: an hour is unusual if it and its two
                                   neighbours held less than this share of the baseline (0.01) */
    int offhours_min_count;     /* offhours.min_count: unusual-hour events in a day to alert (3) */
    int unlock_window_s;        /* unlock.window: seconds (900) */
    int unlock_max_failures;    /* unlock.max_failures: failures (failure or denied) in the window
                                   that raise an alert when reached (5) */
    char **sensitive;           /* sensitive.ids: opaque ids/UIDs (sorted; owned) */
    size_t n_sensitive;
    char **exempt_actors;       /* alerts.exempt_actors: actors never alerted on (owned) */
    size_t n_exempt;
} MvAlertConfig;

/* Fills the defaults above (no sensitive ids, no exemptions). */
void mv_alert_config_default(MvAlertConfig *cfg);
/* Reads key = value lines from path over the current values. "sensitive.file = PATH" reads one id
 * per line (relative paths are taken from the config file's folder); "sensitive.ids = a, b" lists
 * them inline. An unknown key, a bad number or an unreadable file is MV_ERR_ARG naming file and
 * line; cfg keeps what was read before the error and must still be cleared. */
MvStatus mv_alert_config_load(MvAlertConfig *cfg, const char *path, MvError *err);
/* Frees what cfg owns; NULL is accepted. */
void mv_alert_config_clear(MvAlertConfig *cfg);

/* One alert. Rules: "volume", "distinct", "bulk", "offhours", "unlock", "sensitive". */
typedef struct MvAlert {
    const char *rule;
    char *actor;                /* the actor whose behaviour raised it */
    char day[11];               /* "YYYY-MM-DD" (UTC) of the first event involved */
    int64_t start_us, end_us;   /* the events involved */
    double observed;            /* what was seen (events, objects, failures) */
    double threshold;           /* the limit it went over */
    double baseline_mean, baseline_sd; /* the actor's usual (volume, distinct): median and robust
                                          sd of the baseline days; 0 for the other rules */
    char summary[256];          /* one line, no patient data */
    char **objects;             /* sensitive objects touched (sensitive rule), else none */
    size_t n_objects;
    int64_t first_seq;          /* seq of the first event involved, -1 if unknown */
} MvAlert;

typedef struct MvAlertList {
    MvAlert *items;             /* sorted by start time, then rule, then actor */
    size_t n_items;
    uint64_t n_events;          /* events read */
    uint64_t n_bad_lines;       /* malformed lines skipped */
    uint64_t n_actor_days;      /* (actor, day) pairs with at least one event, at or after since */
} MvAlertList;

/* Reads the log at path once (streaming) and applies every rule of cfg. Baselines use all of the
 * history; only alerts with an event at or after since_us are kept (INT64_MIN: all).
 * Malformed lines are counted and skipped (reported through err only when nothing could be read).
 * On success *list holds the alerts (free with mv_alert_list_clear). */
MvStatus mv_alerts_scan(const char *path, const MvAlertConfig *cfg, int64_t since_us, MvAlertList *list,
                        MvError *err);
/* The same over a reader already opened (consumed to its end; the caller frees it). */
MvStatus mv_alerts_scan_reader(MvAuditReader *r, const MvAlertConfig *cfg, int64_t since_us,
                               MvAlertList *list, MvError *err);
void mv_alert_list_clear(MvAlertList *list);

/* The alert as one compact JSON object (keys sorted): malloc'd, NUL-terminated; NULL when out of
 * memory. */
char *mv_alert_to_json(const MvAlert *a);

/* Logs each alert as an "audit.alert" event (outcome "success", objects = the alert's objects,
 * detail = "rule=R actor=A day=D observed=N threshold=T") through append, with actor as the
 * event's actor (NULL: the caller's default) and purpose NULL. Stops at the first failure:
 * MV_ERR_IO, after which the caller must treat the run as a security failure. */
MvStatus mv_alerts_log(const MvAlertList *list, const char *actor, MvAuditAppendFn append, void *ctx,
                       MvError *err);

#ifdef __cplusplus
}
#endif
#endif
