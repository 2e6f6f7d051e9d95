/* Placeholders of `medveil audit export` and `medveil audit alerts` for builds without the
 * hospital-facing audit files; they are replaced (and this file deleted) when those land. */
#include "cli.h"
#include "cli_audit.h"

int cli_audit_export(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("audit export", "not available in this build");
    return MV_EXIT_USAGE;
}

int cli_audit_alerts(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("audit alerts", "not available in this build");
    return MV_EXIT_USAGE;
}
