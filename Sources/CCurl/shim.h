#ifndef ROSETTA_CCURL_SHIM_H
#define ROSETTA_CCURL_SHIM_H
#include <curl/curl.h>
#endif
