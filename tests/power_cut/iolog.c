/*
 * iolog: an LD_PRELOAD shim that records, in order, every write, truncation and fsync a
 * process makes to one SQLite database and its -wal, -shm and -journal files, every
 * creation and deletion of them, and everything it writes to stdout (the soak's acks).
 * tests/power_cut.rs compiles it with gcc, runs `storenode soak` under it and rebuilds the
 * files as a power cut at any point of that log would leave them.
 *
 * Environment: POWERCUT_DB is the database's absolute path (as SQLite opens it),
 * POWERCUT_LOG the log file (appended to, so several processes can record in turn).
 *
 * One global mutex is held across each recorded call and the append of its record, so the
 * log is a linearisation of what the process did: an fsync record comes after every write
 * that returned before the fsync was called, and an ack printed after a commit returned comes
 * after that commit's fsync. Calls on other descriptors pass straight through.
 *
 * Record (little-endian): u8 kind, u8 file, u64 offset, u64 len, then len bytes of data for
 * WRITE and STDOUT. The reader is tests/power_cut/log.rs; keep the two in step.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum kind { K_CREATE = 1, K_WRITE = 2, K_SYNC = 3, K_TRUNCATE = 4, K_UNLINK = 5, K_STDOUT = 6 };
enum { F_DB = 0, F_WAL = 1, F_SHM = 2, F_JOURNAL = 3, F_COUNT = 4, F_NONE = 255 };
static const char *SUFFIX[F_COUNT] = {"", "-wal", "-shm", "-journal"};

#define FDS_MAX 4096
static unsigned char fd_file[FDS_MAX]; /* F_NONE (untracked) unless opened on a tracked path */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static char db_path[4096];
static size_t db_len;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_close)(int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);

static void die(const char *what) {
    static const char msg[] = "iolog: cannot record, aborting: ";
    if (real_write) {
        real_write(2, msg, sizeof msg - 1);
        real_write(2, what, strlen(what));
        real_write(2, "\n", 1);
    }
    abort();
}

static void init(void) {
    memset(fd_file, F_NONE, sizeof fd_file);
    real_open = dlsym(RTLD_NEXT, "open");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat");
    real_openat64 = dlsym(RTLD_NEXT, "openat64");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_unlinkat = dlsym(RTLD_NEXT, "unlinkat");
    const char *db = getenv("POWERCUT_DB");
    const char *log = getenv("POWERCUT_LOG");
    if (!db || !log) return; /* not recording: a plain pass-through */
    db_len = strlen(db);
    if (db_len + 16 > sizeof db_path) die("POWERCUT_DB too long");
    memcpy(db_path, db, db_len + 1);
    log_fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) die("cannot open POWERCUT_LOG");
    if (log_fd < FDS_MAX) fd_file[log_fd] = F_NONE;
}

static void ready(void) { pthread_once(&once, init); }

/* Which tracked file `path` names, or F_NONE. */
static int file_of(const char *path) {
    if (log_fd < 0 || !path || strncmp(path, db_path, db_len) != 0) return F_NONE;
    for (int f = 0; f < F_COUNT; f++)
        if (strcmp(path + db_len, SUFFIX[f]) == 0) return f;
    return F_NONE;
}

static int tracked(int fd) {
    return log_fd >= 0 && fd >= 0 && fd < FDS_MAX && fd_file[fd] != F_NONE;
}

static void put_all(const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = real_write(log_fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("write to POWERCUT_LOG failed");
        p += n;
        len -= (size_t)n;
    }
}

/* Append one record; the caller holds `lock`. */
static void record(int kind, int file, uint64_t offset, const void *data, uint64_t len) {
    unsigned char head[18];
    head[0] = (unsigned char)kind;
    head[1] = (unsigned char)file;
    memcpy(head + 2, &offset, 8);
    memcpy(head + 10, &len, 8);
    put_all(head, sizeof head);
    if (data && len) put_all(data, len);
}

static int opened(const char *path, int flags, int fd, int existed) {
    if (fd < 0 || fd >= FDS_MAX) return fd;
    int f = file_of(path);
    fd_file[fd] = (unsigned char)f;
    if (f == F_NONE) return fd;
    if (!existed) record(K_CREATE, f, 0, NULL, 0);
    if (flags & O_TRUNC) record(K_TRUNCATE, f, 0, NULL, 0);
    return fd;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

#define OPEN_BODY(CALL)                                                      \
    ready();                                                                 \
    mode_t mode = 0;                                                         \
    if (flags & (O_CREAT | O_TMPFILE)) {                                     \
        va_list ap;                                                          \
        va_start(ap, flags);                                                 \
        mode = va_arg(ap, mode_t);                                           \
        va_end(ap);                                                          \
    }                                                                        \
    if (file_of(path) == F_NONE) {                                           \
        int fd = CALL;                                                       \
        if (fd >= 0 && fd < FDS_MAX) fd_file[fd] = F_NONE;                   \
        return fd;                                                           \
    }                                                                        \
    pthread_mutex_lock(&lock);                                               \
    int existed = exists(path);                                              \
    int fd = CALL;                                                           \
    int saved = errno;                                                       \
    opened(path, flags, fd, existed);                                        \
    pthread_mutex_unlock(&lock);                                             \
    errno = saved;                                                           \
    return fd;

int open(const char *path, int flags, ...) { OPEN_BODY(real_open(path, flags, mode)) }
int open64(const char *path, int flags, ...) { OPEN_BODY(real_open64(path, flags, mode)) }
int openat(int dir, const char *path, int flags, ...) {
    OPEN_BODY(real_openat(dir, path, flags, mode))
}
int openat64(int dir, const char *path, int flags, ...) {
    OPEN_BODY(real_openat64(dir, path, flags, mode))
}

ssize_t write(int fd, const void *buf, size_t len) {
    ready();
    if (fd == 1 && log_fd >= 0) {
        pthread_mutex_lock(&lock);
        ssize_t n = real_write(fd, buf, len);
        int saved = errno;
        if (n > 0) record(K_STDOUT, F_NONE, 0, buf, (uint64_t)n);
        pthread_mutex_unlock(&lock);
        errno = saved;
        return n;
    }
    if (!tracked(fd)) return real_write(fd, buf, len);
    pthread_mutex_lock(&lock);
    off_t at = lseek(fd, 0, SEEK_CUR);
    ssize_t n = real_write(fd, buf, len);
    int saved = errno;
    if (n > 0) record(K_WRITE, fd_file[fd], (uint64_t)at, buf, (uint64_t)n);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return n;
}

#define PWRITE_BODY(REAL)                                                    \
    ready();                                                                 \
    if (!tracked(fd)) return REAL(fd, buf, len, at);                         \
    pthread_mutex_lock(&lock);                                               \
    ssize_t n = REAL(fd, buf, len, at);                                      \
    int saved = errno;                                                       \
    if (n > 0) record(K_WRITE, fd_file[fd], (uint64_t)at, buf, (uint64_t)n); \
    pthread_mutex_unlock(&lock);                                             \
    errno = saved;                                                           \
    return n;

ssize_t pwrite(int fd, const void *buf, size_t len, off_t at) { PWRITE_BODY(real_pwrite) }
ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t at) { PWRITE_BODY(real_pwrite64) }

#define SYNC_BODY(REAL)                                                      \
    ready();                                                                 \
    if (!tracked(fd)) return REAL(fd);                                       \
    pthread_mutex_lock(&lock);                                               \
    int rc = REAL(fd);                                                       \
    int saved = errno;                                                       \
    if (rc == 0) record(K_SYNC, fd_file[fd], 0, NULL, 0);                    \
    pthread_mutex_unlock(&lock);                                             \
    errno = saved;                                                           \
    return rc;

int fsync(int fd) { SYNC_BODY(real_fsync) }
int fdatasync(int fd) { SYNC_BODY(real_fdatasync) }

#define TRUNCATE_BODY(REAL)                                                  \
    ready();                                                                 \
    if (!tracked(fd)) return REAL(fd, size);                                 \
    pthread_mutex_lock(&lock);                                               \
    int rc = REAL(fd, size);                                                 \
    int saved = errno;                                                       \
    if (rc == 0) record(K_TRUNCATE, fd_file[fd], (uint64_t)size, NULL, 0);   \
    pthread_mutex_unlock(&lock);                                             \
    errno = saved;                                                           \
    return rc;

int ftruncate(int fd, off_t size) { TRUNCATE_BODY(real_ftruncate) }
int ftruncate64(int fd, off64_t size) { TRUNCATE_BODY(real_ftruncate64) }

int close(int fd) {
    ready();
    if (fd >= 0 && fd < FDS_MAX && fd != log_fd) fd_file[fd] = F_NONE;
    return real_close(fd);
}

static int unlinked(const char *path, int rc) {
    int f = file_of(path);
    if (rc == 0 && f != F_NONE) record(K_UNLINK, f, 0, NULL, 0);
    return rc;
}

int unlink(const char *path) {
    ready();
    if (file_of(path) == F_NONE) return real_unlink(path);
    pthread_mutex_lock(&lock);
    int rc = real_unlink(path);
    int saved = errno;
    unlinked(path, rc);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}

int unlinkat(int dir, const char *path, int flags) {
    ready();
    if (file_of(path) == F_NONE) return real_unlinkat(dir, path, flags);
    pthread_mutex_lock(&lock);
    int rc = real_unlinkat(dir, path, flags);
    int saved = errno;
    unlinked(path, rc);
    pthread_mutex_unlock(&lock);
    errno = saved;
    return rc;
}
