/* Subcommands of `medveil audit` that live in their own files: the DICOM audit message export
 * (with syslog over TLS) and the misuse alerts. cmd_audit.c dispatches to them with argv[0]
 * being the subcommand name ("export" or "alerts"); they return an exit status of cli.h. */
#ifndef MV_CLI_AUDIT_H
#define MV_CLI_AUDIT_H

int cli_audit_export(int argc, char **argv);
int cli_audit_alerts(int argc, char **argv);

#endif
