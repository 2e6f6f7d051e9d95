/* The audit hook every command calls before it reports success: one event appended durably to
 * HOME/audit (created on first use) and a fresh signed checkpoint, or the command fails. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "medveil/audit.h"

static void os_user(char *user, size_t size)
{
    struct passwd *pw = getpwuid(geteuid());

    if (pw != NULL)
        snprintf(user, size, "%s", pw->pw_name);
    else
        snprintf(user, size, "uid:%lu", (unsigned long)geteuid());
}

int cli_audit_many(const char *home, const CliAuditEvent *evs, size_t n)
{
    MvAuditLog *log = NULL;
    MvAuditEvent *events = NULL;
    MvError err;
    char user[256];
    int rc = -1;

    if (n == 0)
        return 0;
    events = calloc(n, sizeof *events);
    if (events == NULL) {
        cli_error("audit", "the action cannot be recorded, so it is refused: out of memory");
        return -1;
    }
    os_user(user, sizeof user);
    for (size_t i = 0; i < n; i++) {
        events[i].action = evs[i].action;
        events[i].actor = evs[i].actor != NULL && evs[i].actor[0] != '\0' ? evs[i].actor : user;
        events[i].objects = evs[i].objects;
        events[i].n_objects = evs[i].n_objects;
        events[i].outcome = evs[i].outcome;
        events[i].purpose = evs[i].purpose;
        events[i].detail = evs[i].detail;
    }
    /* checkpoint_every = 1: every command's events are covered by a signed checkpoint at once;
     * the n events of one call share one write and one fsync. */
    if (mv_audit_open(home, MV_AUDIT_CREATE, 1, &log, &err) != MV_OK ||
        mv_audit_append(log, events, n, NULL, &err) != MV_OK) {
        cli_error("audit", "the action cannot be recorded, so it is refused: %s", err.message);
        goto out;
    }
    rc = 0;
out:
    mv_audit_close(log);
    free(events);
    return rc;
}

int cli_audit(const char *home, const CliAuditEvent *ev)
{
    return cli_audit_many(home, ev, 1);
}
