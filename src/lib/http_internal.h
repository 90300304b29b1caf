/* A small HTTP client over one curl multi handle: concurrent requests on reused connections
 * (HTTP/2 multiplexed when the server offers it), bounded response bodies, TLS verification
 * always on. Private to the Graph connector. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define HTTP_BODY_MAX       (64u << 20) /* bytes of one response body */
#define HTTP_REQUEST_ID_MAX 80
#define HTTP_ERRMSG_MAX     256

struct http;

struct http_opts {
	const char *ca_file; /* NULL: the system trust store */
	bool allow_insecure; /* permits http:// URLs (never disables verification) */
	long timeout_s;      /* whole request */
	long connect_timeout_s;
	unsigned max_connections; /* per host */
};

struct http_request {
	/* in */
	const char *method;
	const char *url;
	const char *body; /* NULL: none */
	size_t body_len;
	const char *content_type;  /* default application/json when there is a body */
	const char *authorization; /* the header value, NULL: none */
	const char *extra_header;  /* one full header line, NULL: none */
	/* A request that must not be sent twice: on a new connection, closed after. libcurl
	 * silently resends a request once when a reused connection dies before any answer; for a
	 * create that could make a duplicate. */
	bool once;
	/* out */
	long status; /* 0: no answer */
	int error;   /* 0, or a negative errno for a transport failure */
	char errmsg[HTTP_ERRMSG_MAX];
	char *resp; /* NUL-terminated, NULL when empty */
	size_t resp_len;
	long retry_after; /* seconds, -1: none */
	char request_id[HTTP_REQUEST_ID_MAX];
	char *location;
};

int http_new(const struct http_opts *o, struct http **ret);
struct http *http_free(struct http *h);
/* Runs the requests concurrently (at most max_connections at a time) until every one has an
 * answer or a transport error. Previous outputs are cleared first. Returns 0, or -ENOMEM. */
int http_perform(struct http *h, struct http_request *const *reqs, size_t n);
void http_request_clear(struct http_request *r);
/* Percent-encodes everything but unreserved characters; NULL on ENOMEM. */
char *http_escape(const char *s);
/* Total HTTP requests sent (each attempt). */
unsigned long long http_requests_sent(const struct http *h);
