/* testutil.h — helpers shared by the unit tests (header-only). */
#ifndef MB_TESTUTIL_H
#define MB_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A fresh directory under /tmp; prefix names the test. */
static inline void tu_mkdtemp(char *dir, size_t size, const char *prefix) {
    snprintf(dir, size, "/tmp/mb-test-%s-XXXXXX", prefix);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
}

static inline int tu_rmrf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

/* A reproducible unit vector of dim floats from seed (LCG, no libc state). */
static inline void tu_unit_vector(float *v, int dim, unsigned seed) {
    double n = 0;
    for (int i = 0; i < dim; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
        n += (double)v[i] * v[i];
    }
    for (int i = 0; i < dim; i++)
        v[i] /= (float)sqrt(n);
}

/* fake_embed_server.py (the http expert's and the generators' local
 * server) on a free port, as a cmocka group setup/teardown: define
 * MOEBUS_FAKE_SERVER and read tu_fake_port. */
#ifdef MOEBUS_FAKE_SERVER
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
static pid_t tu_fake_pid;
static int tu_fake_port;

static inline int tu_fake_setup(void **state) {
    (void)state;
    int fd[2];
    tu_fake_port = -1;
    if (pipe(fd) != 0) return -1;
    tu_fake_pid = fork();
    if (tu_fake_pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        const char *py = getenv("MOEBUS_PYTHON") ? getenv("MOEBUS_PYTHON") : "python3";
        execlp(py, py, MOEBUS_FAKE_SERVER, "0", "16", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char line[64] = {0};
    if (!fgets(line, sizeof line, f) || sscanf(line, "ready %d", &tu_fake_port) != 1) {
        fprintf(stderr, "fake server did not start\n");
        tu_fake_port = -1;
    }
    fclose(f);
    return tu_fake_port > 0 ? 0 : -1;
}

static inline int tu_fake_teardown(void **state) {
    (void)state;
    kill(tu_fake_pid, SIGTERM);
    waitpid(tu_fake_pid, NULL, 0);
    return 0;
}
#endif

#endif
