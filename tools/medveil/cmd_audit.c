/* medveil audit: not yet built; this file is replaced by the capability that provides it. */
#include "cli.h"

void help_audit(FILE *out)
{
    fprintf(out, "usage: %s audit ...\n\nNot available in this build yet.\n", cli_program);
}

int cmd_audit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("audit", "not available in this build yet");
    return MV_EXIT_USAGE;
}
