/* medveil reidentify: not yet built; this file is replaced by the capability that provides it. */
#include "cli.h"

void help_reidentify(FILE *out)
{
    fprintf(out, "usage: %s reidentify ...\n\nNot available in this build yet.\n", cli_program);
}

int cmd_reidentify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("reidentify", "not available in this build yet");
    return MV_EXIT_USAGE;
}
