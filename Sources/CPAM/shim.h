// Linux-PAM's application API.
#ifndef ROSETTA_CPAM_SHIM_H
#define ROSETTA_CPAM_SHIM_H
#include <security/pam_appl.h>
#endif
