// SPDX-License-Identifier: MIT
// Escape attempts run from inside a machine by test_sandbox_escape.sh; built static with the host's gcc.
// Each subcommand tries one thing and prints "ESCAPED: <what>" when it worked, "blocked: <what>: <why>"
// when it did not; the exit status is 0 only when every attempt was blocked. Also used on the host side
// to plant a key in the caller's session keyring before exec'ing `container machine run`.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static int escaped;

static void result(int ok, const char* what) {
    if (ok) {
        printf("ESCAPED: %s\n", what);
        escaped = 1;
    } else {
        printf("blocked: %s: %s\n", what, strerror(errno));
    }
    fflush(stdout);
}

static void kernel_calls(void) {
    result(syscall(SYS_kexec_load, 0, 0, NULL, 0) == 0 || errno == EINVAL, "kexec_load");
    result(syscall(SYS_init_module, NULL, 0, "") == 0 || errno == EFAULT, "init_module");
    result(syscall(SYS_finit_module, -1, "", 0) == 0 || errno == EBADF, "finit_module");
    char handle[128] = {0};
    ((unsigned int*)handle)[0] = 8;
    result(syscall(SYS_open_by_handle_at, AT_FDCWD, handle, O_RDONLY) >= 0 || errno == EBADF || errno == EINVAL ||
               errno == ESTALE,
           "open_by_handle_at");
    result(syscall(SYS_swapoff, "/") == 0 || errno == EINVAL || errno == ENOENT, "swapoff");
    result(syscall(SYS_iopl, 3) == 0, "iopl");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); // setting the clock to what it is: harmless if it ever worked
    result(syscall(SYS_clock_settime, CLOCK_REALTIME, &now) == 0, "clock_settime");
    result(syscall(SYS_acct, NULL) == 0, "acct");
}

// Types a command into every terminal we hold and into our controlling terminal.
static void tiocsti(const char* command) {
    int fds[] = {0, 1, 2, -1};
    int tty = open("/dev/tty", O_RDWR);
    fds[3] = tty;
    for (int i = 0; i < 4; ++i) {
        if (fds[i] < 0 || !isatty(fds[i])) continue;
        int ok = 1;
        for (const char* p = command; *p; ++p)
            if (ioctl(fds[i], TIOCSTI, p) != 0) ok = 0;
        char what[64];
        snprintf(what, sizeof what, "TIOCSTI on fd %d", fds[i]);
        result(ok, what);
    }
}

// Key ids and payloads of our session keyring, and /proc/keys.
static void keys(const char* secret) {
    char buf[4096];
    long n = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_SESSION_KEYRING, buf, sizeof buf);
    int found = 0;
    if (n > 0) {
        for (long i = 0; i + 4 <= n && i + 4 <= (long)sizeof buf; i += 4) {
            int id = *(int*)(buf + i);
            char payload[256] = {0};
            long m = syscall(SYS_keyctl, KEYCTL_READ, id, payload, sizeof payload - 1);
            if (m > 0 && strstr(payload, secret)) found = 1;
        }
    }
    result(found, "read the caller's session key");
    int fd = open("/proc/keys", O_RDONLY);
    n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    result(n > 0, "read /proc/keys");
}

// Polls every visible process for the marker in its environment and for a host binary as its exe.
static void poll_procs(const char* marker, const char* out, int seconds) {
    FILE* f = fopen(out, "w");
    long hits = 0, looks = 0;
    time_t end = time(NULL) + seconds;
    char path[300], buf[65536];
    while (time(NULL) < end) {
        DIR* d = opendir("/proc");
        struct dirent* e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            snprintf(path, sizeof path, "/proc/%s/environ", e->d_name);
            int fd = open(path, O_RDONLY);
            if (fd >= 0) {
                ssize_t n = read(fd, buf, sizeof buf - 1);
                close(fd);
                ++looks;
                if (n > 0) {
                    buf[n] = 0;
                    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
                        if (strstr(buf + i, marker)) {
                            ++hits;
                            fprintf(f, "environ of %s has the marker\n", e->d_name);
                        }
                }
            }
            snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
            ssize_t n = readlink(path, buf, sizeof buf - 1);
            if (n > 0) {
                buf[n] = 0;
                if (strstr(buf, "/bin/container")) {
                    ++hits;
                    fprintf(f, "exe of %s is %s\n", e->d_name, buf);
                }
            }
        }
        if (d) closedir(d);
    }
    fprintf(f, "looks %ld hits %ld\n", looks, hits);
    fclose(f);
}

// Looks for a process whose executable is the host file with device DEV and inode INO (the container
// binary, while a `run` joins) and tries to change that file through /proc/N/exe.
static void host_exe(unsigned long dev, unsigned long ino, const char* out, int seconds) {
    FILE* f = fopen(out, "w");
    long hits = 0, looks = 0;
    time_t end = time(NULL) + seconds;
    char path[300];
    while (time(NULL) < end) {
        DIR* d = opendir("/proc");
        struct dirent* e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            snprintf(path, sizeof path, "/proc/%s/exe", e->d_name);
            struct stat st;
            ++looks;
            if (stat(path, &st) != 0 || st.st_dev != dev || st.st_ino != ino) continue;
            ++hits;
            fprintf(f, "reached the host binary through %s\n", path);
            if (chmod(path, st.st_mode | S_ISUID) == 0) fprintf(f, "chmod worked\n");
        }
        if (d) closedir(d);
    }
    fprintf(f, "looks %ld hits %ld\n", looks, hits);
    fclose(f);
}

static void mknod_block(void) {
    int ok = mknod("/tmp/escape-blk", S_IFBLK | 0600, makedev(254, 0)) == 0;
    if (ok) {
        int fd = open("/tmp/escape-blk", O_RDONLY);
        char b[512];
        ok = fd >= 0 && read(fd, b, sizeof b) == (ssize_t)sizeof b;
    }
    result(ok, "mknod a block device and read it");
}

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    const char* cmd = argv[1];
    if (!strcmp(cmd, "kernel")) {
        kernel_calls();
        mknod_block();
    } else if (!strcmp(cmd, "tiocsti") && argc > 2) {
        tiocsti(argv[2]);
    } else if (!strcmp(cmd, "keys") && argc > 2) {
        keys(argv[2]);
    } else if (!strcmp(cmd, "hostexe") && argc > 5) {
        host_exe(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0), argv[4], atoi(argv[5]));
    } else if (!strcmp(cmd, "poll") && argc > 4) {
        poll_procs(argv[2], argv[3], atoi(argv[4]));
    } else if (!strcmp(cmd, "addkey") && argc > 3) {
        // Host side: a key in a fresh session keyring of ours, then exec the rest of the command line.
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0) return perror("join"), 3;
        if (syscall(SYS_add_key, "user", "ctr-escape-test", argv[2], strlen(argv[2]), KEY_SPEC_SESSION_KEYRING) < 0)
            return perror("add_key"), 3;
        execv(argv[3], argv + 3);
        return perror("exec"), 3;
    } else if (!strcmp(cmd, "fds") && argc > 2) {
        // Lists our open descriptors (before opening the output file) into argv[2].
        char list[4096] = {0};
        size_t len = 0;
        for (int fd = 0; fd < 4096 && len + 8 < sizeof list; ++fd)
            if (fcntl(fd, F_GETFD) >= 0) len += (size_t)snprintf(list + len, sizeof list - len, "%d ", fd);
        FILE* f = fopen(argv[2], "w");
        if (!f) return 3;
        fputs(list, f);
        fclose(f);
    } else if (!strcmp(cmd, "fdwrite") && argc > 2) {
        // Writes through an fd number the caller may have leaked to us.
        int fd = atoi(argv[2]);
        result(write(fd, "escaped\n", 8) == 8, "write through an inherited fd");
    } else {
        return 2;
    }
    return escaped ? 1 : 0;
}
