/*
 * An LD_PRELOAD library for the durability tests: it makes one kind of system call fail for
 * files whose path ends with a given suffix, the way a failing disk or a full file system
 * would, so the tests can check what the responder publishes and answers then.
 *
 *   MGSPOOL_FAULT_CALL    fsync, close, write or renameat2
 *   MGSPOOL_FAULT_PATH    suffix of the file's path (/proc/self/fd); for renameat2, of the
 *                         source directory's path. A suffix that ends with a slash, such
 *                         as "spool/tmp/", matches the entries directly inside that folder.
 *   MGSPOOL_FAULT_ERRNO   the errno to fail with (default EIO)
 *
 * close still closes the descriptor before it reports the failure, as Linux does.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int path_of_fd(int fd, char* path, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t length = readlink(link, path, size - 1);
  if (length < 0) {
    return -1;
  }
  path[length] = '\0';
  return 0;
}

static int fault_errno(void) {
  const char* text = getenv("MGSPOOL_FAULT_ERRNO");
  return text != NULL ? atoi(text) : EIO;
}

/* Returns nonzero when call on fd is the one to fail. */
static int should_fail(const char* call, int fd) {
  const char* wanted = getenv("MGSPOOL_FAULT_CALL");
  const char* suffix = getenv("MGSPOOL_FAULT_PATH");
  if (wanted == NULL || suffix == NULL || strcmp(wanted, call) != 0) {
    return 0;
  }
  char path[4096];
  if (path_of_fd(fd, path, sizeof path) != 0) {
    return 0;
  }
  size_t suffix_length = strlen(suffix);
  if (suffix_length >= 1 && suffix[suffix_length - 1] == '/') {
    char* last_slash = strrchr(path, '/');
    if (last_slash == NULL) {
      return 0;
    }
    *last_slash = '\0';
    suffix_length -= 1;
  }
  size_t path_length = strlen(path);
  return path_length >= suffix_length && strncmp(path + path_length - suffix_length, suffix, suffix_length) == 0;
}

int fsync(int fd) {
  static int (*real_fsync)(int);
  if (real_fsync == NULL) {
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  }
  if (should_fail("fsync", fd)) {
    errno = fault_errno();
    return -1;
  }
  return real_fsync(fd);
}

int close(int fd) {
  static int (*real_close)(int);
  if (real_close == NULL) {
    real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
  }
  int fail = should_fail("close", fd);
  int result = real_close(fd);
  if (fail) {
    errno = fault_errno();
    return -1;
  }
  return result;
}

ssize_t write(int fd, const void* buffer, size_t count) {
  static ssize_t (*real_write)(int, const void*, size_t);
  if (real_write == NULL) {
    real_write = (ssize_t(*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
  }
  if (should_fail("write", fd)) {
    errno = fault_errno();
    return -1;
  }
  return real_write(fd, buffer, count);
}

int renameat2(int old_dir, const char* old_name, int new_dir, const char* new_name, unsigned int flags) {
  static int (*real_renameat2)(int, const char*, int, const char*, unsigned int);
  if (real_renameat2 == NULL) {
    real_renameat2 = (int (*)(int, const char*, int, const char*, unsigned int))dlsym(RTLD_NEXT, "renameat2");
  }
  if (should_fail("renameat2", old_dir)) {
    errno = fault_errno();
    return -1;
  }
  return real_renameat2(old_dir, old_name, new_dir, new_name, flags);
}
