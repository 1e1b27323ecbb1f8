/* Request framing and the fixed response, shared by c-epoll and c-io_uring. */
#ifndef HTTP_H
#define HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_RESPONSE_LEN 81
#define HTTP_RESPONSE_REPEAT 64
#define HTTP_RESPONSES_LEN (HTTP_RESPONSE_LEN * HTTP_RESPONSE_REPEAT)
#define HTTP_MAX_HEAD 8192

/* Returned by http_frame when a head grows past HTTP_MAX_HEAD bytes. */
#define HTTP_HEAD_TOO_LONG (-1)

/* Progress through the current request head: how many bytes of "\r\n\r\n" have
 * matched (0..3) and how many bytes the head has so far. Zero-initialised. */
struct http_framing {
    uint32_t matched;
    uint32_t head_len;
};

/* The response repeated HTTP_RESPONSE_REPEAT times (plus a NUL not to be sent). */
extern const char http_responses[HTTP_RESPONSES_LEN + 1];

/* The next bytes to send of an output that owes owed_bytes bytes of responses. */
struct http_span {
    const char *ptr;
    size_t len;
};

/* Scans len received bytes; returns how many requests they complete, or
 * HTTP_HEAD_TOO_LONG (the connection must then be closed). */
long http_frame(struct http_framing *framing, const unsigned char *data, size_t len);

/* Where the owed bytes continue in http_responses, and how many of them it holds
 * contiguously (at most owed_bytes). owed_bytes must not be 0. */
struct http_span http_owed_span(uint64_t owed_bytes);

#endif
