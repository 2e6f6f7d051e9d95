/* medveil vault: not yet built; this file is replaced by the capability that provides it. */
#include "cli.h"

void help_vault(FILE *out)
{
    fprintf(out, "usage: %s vault ...\n\nNot available in this build yet.\n", cli_program);
}

int cmd_vault(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("vault", "not available in this build yet");
    return MV_EXIT_USAGE;
}
