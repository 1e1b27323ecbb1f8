#include "http.h"

#define RESPONSE                                                                  \
    "HTTP/1.1 200 OK\r\nContent-type: text/html\r\nContent-length: 17\r\n\r\n"  \
    "Have a nice day!\n"
#define RESPONSE_4 RESPONSE RESPONSE RESPONSE RESPONSE
#define RESPONSE_16 RESPONSE_4 RESPONSE_4 RESPONSE_4 RESPONSE_4
#define RESPONSE_64 RESPONSE_16 RESPONSE_16 RESPONSE_16 RESPONSE_16

_Static_assert(sizeof(RESPONSE) - 1 == HTTP_RESPONSE_LEN, "response length");
_Static_assert(sizeof(RESPONSE_64) - 1 == HTTP_RESPONSES_LEN, "response buffer length");

/* Sized for the literal's NUL too: an exactly-fitting unterminated initializer draws
 * warnings from newer compilers. */
const char http_responses[HTTP_RESPONSES_LEN + 1] = RESPONSE_64;

long http_frame(struct http_framing *framing, const unsigned char *data, size_t len)
{
    uint32_t matched = framing->matched;
    uint32_t head_len = framing->head_len;
    long requests = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char byte = data[i];

        if (++head_len > HTTP_MAX_HEAD)
            return HTTP_HEAD_TOO_LONG;
        if (byte == '\r') {
            /* "\r\n\r" goes on to 3; any other '\r' may start a new terminator. */
            matched = matched == 2 ? 3 : 1;
        } else if (byte == '\n' && matched == 1) {
            matched = 2;
        } else if (byte == '\n' && matched == 3) {
            requests++;
            matched = 0;
            head_len = 0;
        } else {
            matched = 0;
        }
    }
    framing->matched = matched;
    framing->head_len = head_len;
    return requests;
}

struct http_span http_owed_span(uint64_t owed_bytes)
{
    /* The output is the response repeated, so whatever has been sent so far, the
     * owed bytes start where owed_bytes is short of a whole number of responses. */
    size_t offset = (HTTP_RESPONSE_LEN - owed_bytes % HTTP_RESPONSE_LEN) % HTTP_RESPONSE_LEN;
    size_t available = HTTP_RESPONSES_LEN - offset;
    struct http_span span = {
        .ptr = http_responses + offset,
        .len = owed_bytes < available ? (size_t)owed_bytes : available,
    };
    return span;
}
