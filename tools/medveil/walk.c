/* Expands the command line's files and folders into a stream of regular files, folders
 * recursively in name order, so that every subcommand treats a tree the same way. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define MAX_EXCLUDED 4
static dev_t excluded_dev[MAX_EXCLUDED];
static ino_t excluded_ino[MAX_EXCLUDED];
static int n_excluded;

void cli_walk_exclude(const char *dir)
{
    struct stat sb;

    if (n_excluded < MAX_EXCLUDED && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        excluded_dev[n_excluded] = sb.st_dev;
        excluded_ino[n_excluded] = sb.st_ino;
        n_excluded++;
    }
}

static int is_excluded(const struct stat *sb)
{
    for (int i = 0; i < n_excluded; i++)
        if (sb->st_dev == excluded_dev[i] && sb->st_ino == excluded_ino[i])
            return 1;
    return 0;
}

int cli_mkdirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, dir, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int cli_make_parents(const char *path)
{
    static _Thread_local char last[4096];
    char buf[4096];
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/');

    if (n >= sizeof buf)
        return -1;
    if (slash != NULL && (size_t)(slash - path) == strlen(last) && memcmp(last, path, (size_t)(slash - path)) == 0)
        return 0;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (slash != NULL && (size_t)(slash - path) < sizeof last) {
        memcpy(last, path, (size_t)(slash - path));
        last[slash - path] = '\0';
    }
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int walk_one(const char *path, CliFileFn fn, void *ctx, const char *cmd, int *n_failed, int depth)
{
    struct stat sb;
    struct dirent **names = NULL;
    int n, rc = 0;

    if (stat(path, &sb) != 0) {
        cli_error(cmd, "%s: %s", path, strerror(errno));
        (*n_failed)++;
        return 0;
    }
    if (S_ISREG(sb.st_mode))
        return fn(path, ctx);
    if (S_ISDIR(sb.st_mode) && is_excluded(&sb))
        return 0; /* the run's own output folder */
    if (!S_ISDIR(sb.st_mode)) {
        cli_error(cmd, "%s: not a regular file or folder; skipped", path);
        (*n_failed)++;
        return 0;
    }
    if (depth > 64) {
        cli_error(cmd, "%s: folders nested too deep; skipped", path);
        (*n_failed)++;
        return 0;
    }
    n = scandir(path, &names, NULL, by_name);
    if (n < 0) {
        cli_error(cmd, "%s: %s", path, strerror(errno));
        (*n_failed)++;
        return 0;
    }
    for (int i = 0; i < n; i++) {
        char *child = NULL;
        if (rc == 0 && strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            size_t len = strlen(path);
            int slash = len > 0 && path[len - 1] == '/';
            if (asprintf(&child, "%s%s%s", path, slash ? "" : "/", names[i]->d_name) < 0) {
                cli_error(cmd, "out of memory");
                rc = -1;
            } else {
                rc = walk_one(child, fn, ctx, cmd, n_failed, depth + 1);
                free(child);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int cli_walk(char **paths, int n_paths, CliFileFn fn, void *ctx, const char *cmd, int *n_failed)
{
    for (int i = 0; i < n_paths; i++) {
        int rc = walk_one(paths[i], fn, ctx, cmd, n_failed, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cli_sync_fs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc, saved;

    if (fd < 0)
        return -1;
    rc = syncfs(fd);
    saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
