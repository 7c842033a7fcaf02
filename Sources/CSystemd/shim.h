// The only C in the project: libsystemd's journal and daemon (sd_notify) APIs.
// sd_journal_send is C-variadic and cannot be called from Swift; sd_journal_sendv can.
#ifndef OPENAI_AUDITD_CSYSTEMD_SHIM_H
#define OPENAI_AUDITD_CSYSTEMD_SHIM_H

#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

#endif
