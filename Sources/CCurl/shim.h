#ifndef ROSETTA_CCURL_SHIM_H
#define ROSETTA_CCURL_SHIM_H

/*
 * The one C header that includes <curl/curl.h> (see PLATFORM-NOTES.md: a second C module
 * including it loses CURLOPT_* names in release builds).
 *
 * Swift cannot call C variadic functions, so curl_easy_setopt, curl_easy_getinfo and
 * curl_multi_setopt get one typed wrapper per argument type here. Macros Swift cannot import
 * (or imports with the wrong type) get typed constants or functions.
 */

#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

/* ---- curl_easy_setopt, one wrapper per argument type ---- */

/** Sets an option whose argument is a `long`. */
static inline CURLcode rosetta_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets an option whose argument is a `curl_off_t` (the *_LARGE options). */
static inline CURLcode rosetta_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets an option whose argument is a NUL-terminated string (curl copies it, except CURLOPT_POSTFIELDS). */
static inline CURLcode rosetta_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets an option whose argument is an opaque pointer (user data, buffers). */
static inline CURLcode rosetta_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets an option whose argument is a header list. */
static inline CURLcode rosetta_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets a write-shaped callback (CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION). */
static inline CURLcode rosetta_easy_setopt_write_callback(CURL *handle, CURLoption option, curl_write_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets the transfer-progress callback (CURLOPT_XFERINFOFUNCTION). */
static inline CURLcode rosetta_easy_setopt_xferinfo_callback(CURL *handle, CURLoption option, curl_xferinfo_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/** Sets the pre-request callback (CURLOPT_PREREQFUNCTION), called once the connection is ready. */
static inline CURLcode rosetta_easy_setopt_prereq_callback(CURL *handle, CURLoption option, curl_prereq_callback value) {
    return curl_easy_setopt(handle, option, value);
}

/* ---- curl_easy_getinfo, one wrapper per result type ---- */

/** Reads a `long` info value. */
static inline CURLcode rosetta_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

/** Reads a `curl_off_t` info value (the *_T infos). */
static inline CURLcode rosetta_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}

/** Reads a string info value; the string belongs to the handle. */
static inline CURLcode rosetta_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}

/** Reads a pointer info value (CURLINFO_PRIVATE). */
static inline CURLcode rosetta_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

/* ---- curl_multi_setopt ---- */

/** Sets a multi option whose argument is a `long`. */
static inline CURLMcode rosetta_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

/* ---- macros and unions ---- */

/** CURL_GLOBAL_DEFAULT as a typed value. */
static const long rosetta_global_default = CURL_GLOBAL_DEFAULT;

/** CURL_WRITEFUNC_PAUSE as a size_t: a write callback returns it to pause receiving. */
static const size_t rosetta_writefunc_pause = CURL_WRITEFUNC_PAUSE;

/** CURL_ERROR_SIZE: the byte size CURLOPT_ERRORBUFFER must have. */
static const int rosetta_error_size = CURL_ERROR_SIZE;

/** CURL_HTTP_VERSION_1_1 as a long for CURLOPT_HTTP_VERSION. */
static const long rosetta_http_version_1_1 = CURL_HTTP_VERSION_1_1;

/** Resumes a paused transfer in both directions (CURLPAUSE_CONT). */
static inline CURLcode rosetta_easy_unpause(CURL *handle) {
    return curl_easy_pause(handle, CURLPAUSE_CONT);
}

/** Whether a multi message reports a finished transfer (CURLMSG_DONE). */
static inline int rosetta_multi_message_is_done(const CURLMsg *message) {
    return message->msg == CURLMSG_DONE;
}

/** The result code of a finished transfer's multi message (the union's `result`). */
static inline CURLcode rosetta_multi_message_result(const CURLMsg *message) {
    return message->data.result;
}

#endif
