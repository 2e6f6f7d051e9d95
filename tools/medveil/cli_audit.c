/* Audit hook of the CLI: until the audit module lands, events are accepted and dropped. The
 * audit capability replaces this file with the durable, Merkle-logged implementation. */
#include "cli.h"

int cli_audit(const char *home, const CliAuditEvent *ev)
{
    (void)home;
    (void)ev;
    return 0;
}
