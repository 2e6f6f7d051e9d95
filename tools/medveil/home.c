/* The home folder of persistent state (keyring, vault, audit log), resolved as DESIGN.md says:
 * --home, else $MEDVEIL_HOME, else ./.medveil. */
#include <stdlib.h>

#include "cli.h"

const char *cli_home(const char *opt)
{
    const char *env;

    if (opt != NULL && *opt != '\0')
        return opt;
    env = getenv("MEDVEIL_HOME");
    if (env != NULL && *env != '\0')
        return env;
    return ".medveil";
}
