/* libFuzzer target for the audit log reader and what consumes it (src/audit): the input is an
 * events.jsonl; every event read is formatted as a DICOM audit message and as an RFC 5424
 * message, and the whole log goes through the alert rules. Whatever bytes the log held, the
 * XML never contains a control character (tab, CR and LF become character references; the
 * others U+FFFD). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "medveil/audit_export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_xml(const char *xml, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)xml[i];
        if (c < 0x20)
            abort(); /* control characters and raw newlines never reach the message */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    MvAuditReader *r = NULL;
    MvAuditEvent ev;
    MvAlertConfig cfg;
    MvAlertList list;
    MvError err;
    MvStatus st;

    if (mv_audit_reader_open_mem((const char *)data, size, "fuzz", &r, &err) != MV_OK)
        return 0;
    while ((st = mv_audit_reader_next(r, &ev, &err)) != MV_ERR_NOTFOUND) {
        char *xml = NULL, *msg = NULL;
        size_t len = 0, msg_len = 0;
        if (st != MV_OK)
            continue;
        if (mv_dicom_audit_format(&ev, NULL, &xml, &len, &err) == MV_OK) {
            check_xml(xml, len);
            if (mv_syslog_format(10, 5, ev.time, ev.host, "medveil", "1", "IHE+RFC-3881", xml, len, &msg, &msg_len,
                                 &err) == MV_OK)
                free(msg);
            free(xml);
        }
    }
    mv_audit_reader_free(r);

    mv_alert_config_default(&cfg);
    cfg.bulk_max_objects = 3;
    cfg.unlock_max_failures = 2;
    cfg.baseline_min_days = 1;
    if (mv_audit_reader_open_mem((const char *)data, size, "fuzz", &r, &err) == MV_OK) {
        if (mv_alerts_scan_reader(r, &cfg, INT64_MIN, &list, &err) == MV_OK) {
            for (size_t i = 0; i < list.n_items; i++)
                free(mv_alert_to_json(&list.items[i]));
            mv_alert_list_clear(&list);
        }
        mv_audit_reader_free(r);
    }
    return 0;
}
