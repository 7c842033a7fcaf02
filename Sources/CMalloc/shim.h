// glibc's allocator settings (mallopt), which Swift's Glibc module does not bring in.
#ifndef OPENAI_AUDITD_CMALLOC_SHIM_H
#define OPENAI_AUDITD_CMALLOC_SHIM_H

#include <malloc.h>

#endif
