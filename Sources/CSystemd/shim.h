// libsystemd's daemon API (sd-daemon.h): socket activation, readiness notification, the fd store, the
// watchdog; and its journal API (sd-journal.h) for structured log records (`sd_journal_sendv`).
#ifndef ROSETTA_CSYSTEMD_SHIM_H
#define ROSETTA_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

// The first descriptor systemd passes (SD_LISTEN_FDS_START is a macro Swift imports only as a literal).
static inline int rosetta_sd_listen_fds_start(void) { return SD_LISTEN_FDS_START; }
#endif
