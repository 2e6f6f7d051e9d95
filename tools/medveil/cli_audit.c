/* The audit hook every command calls before it reports success: one event appended durably to
 * HOME/audit (created on first use) and a fresh signed checkpoint, or the command fails. */
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "medveil/audit.h"

int cli_audit(const char *home, const CliAuditEvent *ev)
{
    MvAuditLog *log = NULL;
    MvAuditEvent event;
    MvError err;
    char user[256];

    memset(&event, 0, sizeof event);
    if (ev->actor != NULL && ev->actor[0] != '\0') {
        snprintf(user, sizeof user, "%s", ev->actor);
    } else {
        struct passwd *pw = getpwuid(geteuid());
        if (pw != NULL)
            snprintf(user, sizeof user, "%s", pw->pw_name);
        else
            snprintf(user, sizeof user, "uid:%lu", (unsigned long)geteuid());
    }
    event.action = ev->action;
    event.actor = user;
    event.objects = ev->objects;
    event.n_objects = ev->n_objects;
    event.outcome = ev->outcome;
    event.purpose = ev->purpose;
    event.detail = ev->detail;
    /* checkpoint_every = 1: every command's event is covered by a signed checkpoint at once. */
    if (mv_audit_open(home, MV_AUDIT_CREATE, 1, &log, &err) != MV_OK ||
        mv_audit_append(log, &event, 1, NULL, &err) != MV_OK) {
        cli_error("audit", "the action cannot be recorded, so it is refused: %s", err.message);
        mv_audit_close(log);
        return -1;
    }
    mv_audit_close(log);
    return 0;
}
