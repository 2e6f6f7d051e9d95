/* OCR runs faster alone: Tesseract parallelises its recogniser with OpenMP, and on a busy
 * machine, or with several deid workers, those threads spin against each other (a run
 * takes about twice as long). The OpenMP runtime reads OMP_THREAD_LIMIT only when it is
 * loaded, so a command that is about to run OCR re-executes itself once with it set. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_CMDLINE (1u << 20)

void cli_pixel_env(void)
{
    static char buf[MAX_CMDLINE];
    char **args;
    size_t len = 0, n_args = 0, cap = 1;
    ssize_t got;
    int fd;

    if (getenv("OMP_THREAD_LIMIT") != NULL || getenv("MEDVEIL_NO_REEXEC") != NULL)
        return;
    fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    while (len < sizeof buf - 1 && (got = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)got;
    close(fd);
    if (len == 0 || len >= sizeof buf - 1)
        return;
    buf[len] = '\0';
    /* Every argument, exactly: a command line that was cut would lose inputs. */
    for (size_t i = 0; i < len; i++)
        cap += buf[i] == '\0';
    if (buf[len - 1] != '\0')
        cap++;
    args = calloc(cap, sizeof *args);
    if (args == NULL)
        return;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        args[n_args++] = buf + i;
    args[n_args] = NULL;
    if (setenv("OMP_THREAD_LIMIT", "1", 0) == 0)
        execv("/proc/self/exe", args);
    /* exec failed: go on as we are, only slower. */
    unsetenv("OMP_THREAD_LIMIT");
    free(args);
}
