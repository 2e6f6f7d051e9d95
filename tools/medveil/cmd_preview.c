/* medveil preview: not yet built; this file is replaced by the capability that provides it. */
#include "cli.h"

void help_preview(FILE *out)
{
    fprintf(out, "usage: %s preview ...\n\nNot available in this build yet.\n", cli_program);
}

int cmd_preview(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("preview", "not available in this build yet");
    return MV_EXIT_USAGE;
}
