// Linux-PAM's application API, plus thread-local filesystem credentials for the tenant socket helper.
#ifndef ROSETTA_CPAM_SHIM_H
#define ROSETTA_CPAM_SHIM_H
#include <security/pam_appl.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

// Sets the calling thread's filesystem uid and returns the previous one (setfsuid(2)).
static inline int rosetta_thread_setfsuid(unsigned int uid) { return setfsuid((uid_t)uid); }
// Sets the calling thread's filesystem gid and returns the previous one (setfsgid(2)).
static inline int rosetta_thread_setfsgid(unsigned int gid) { return setfsgid((gid_t)gid); }
// Sets the supplementary groups of the calling thread only: the raw system call, not glibc's
// setgroups(3), which would change every thread of the process.
static inline int rosetta_thread_setgroups(int count, const gid_t *groups) {
    return (int)syscall(SYS_setgroups, (long)count, groups);
}
#endif
