/* `medveil audit export` and `medveil audit alerts` (issue 6): entry points that the `audit`
 * command's dispatcher (cmd_audit.c) calls with argv[0] = "export" or "alerts" and the options
 * after it. Each returns an exit status of the DESIGN.md contract. */
#ifndef MV_CMD_AUDIT_EXT_H
#define MV_CMD_AUDIT_EXT_H

#include <stdio.h>

int cli_audit_export(int argc, char **argv);
void help_audit_export(FILE *out);
int cli_audit_alerts(int argc, char **argv);
void help_audit_alerts(FILE *out);

#endif
