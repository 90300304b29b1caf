/* HTTP client for the Graph connector: one curl multi handle, requests run concurrently on
 * kept-alive connections, bodies bounded, TLS always verified. */
#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

struct http {
	CURLM *multi;
	CURL **pool; /* idle easy handles, reused so connections and TLS sessions stay warm */
	size_t n_pool;
	char *ca_file;
	bool allow_insecure;
	long timeout_s, connect_timeout_s;
	unsigned max_connections;
	unsigned long long sent;
};

struct xfer {
	struct http_request *req;
	CURL *easy;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
	char *buf;
	size_t len, cap;
	bool too_big;
};

static bool global_ok;

int http_new(const struct http_opts *o, struct http **ret)
{
	struct http *h;

	if (!global_ok) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return -EIO;
		global_ok = true;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->multi = curl_multi_init();
	h->pool = calloc(o->max_connections ? o->max_connections : 1, sizeof(CURL *));
	if (!h->multi || !h->pool || (o->ca_file && !(h->ca_file = strdup(o->ca_file)))) {
		http_free(h);
		return -ENOMEM;
	}
	h->allow_insecure = o->allow_insecure;
	h->timeout_s = o->timeout_s > 0 ? o->timeout_s : 120;
	h->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 15;
	h->max_connections = o->max_connections ? o->max_connections : 1;
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max_connections);
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->max_connections + 2);
	*ret = h;
	return 0;
}

struct http *http_free(struct http *h)
{
	if (!h)
		return NULL;
	for (size_t i = 0; i < h->n_pool; i++)
		curl_easy_cleanup(h->pool[i]);
	free(h->pool);
	if (h->multi)
		curl_multi_cleanup(h->multi);
	free(h->ca_file);
	free(h);
	return NULL;
}

unsigned long long http_requests_sent(const struct http *h)
{
	return h ? h->sent : 0;
}

void http_request_clear(struct http_request *r)
{
	free(r->resp);
	free(r->location);
	r->resp = NULL;
	r->location = NULL;
	r->resp_len = 0;
	r->status = 0;
	r->error = 0;
	r->errmsg[0] = '\0';
	r->retry_after = -1;
	r->request_id[0] = '\0';
}

char *http_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;

	if (x->len + n > HTTP_BODY_MAX) {
		x->too_big = true;
		return 0;
	}
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *b;
		while (cap < x->len + n + 1)
			cap *= 2;
		b = realloc(x->buf, cap);
		if (!b)
			return 0;
		x->buf = b;
		x->cap = cap;
	}
	memcpy(x->buf + x->len, data, n);
	x->len += n;
	x->buf[x->len] = '\0';
	return n;
}

/* "Name: value" into value (trimmed) when the name matches. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t out_len)
{
	size_t nl = strlen(name), i, j;

	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return false;
	i = nl + 1;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	j = len;
	while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' '))
		j--;
	if (j - i >= out_len)
		j = i + out_len - 1;
	memcpy(out, line + i, j - i);
	out[j - i] = '\0';
	return true;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct xfer *x = userdata;
	size_t n = size * nmemb;
	char v[512];

	if (header_value(data, n, "retry-after", v, sizeof(v))) {
		char *end;
		long s;
		errno = 0;
		s = strtol(v, &end, 10);
		if (!errno && end != v && s >= 0)
			x->req->retry_after = s > 3600 ? 3600 : s;
	} else if (header_value(data, n, "request-id", v, sizeof(v))) {
		size_t k = strlen(v);
		if (k >= sizeof(x->req->request_id))
			k = sizeof(x->req->request_id) - 1;
		memcpy(x->req->request_id, v, k);
		x->req->request_id[k] = '\0';
	} else if (header_value(data, n, "location", v, sizeof(v))) {
		free(x->req->location);
		x->req->location = strdup(v);
	}
	return n;
}

static int map_curl_error(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		return -EPROTO;
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EPROTONOSUPPORT;
	case CURLE_WRITE_ERROR:
		return -EFBIG;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static CURL *take_easy(struct http *h)
{
	if (h->n_pool > 0) {
		CURL *e = h->pool[--h->n_pool];
		curl_easy_reset(e);
		return e;
	}
	return curl_easy_init();
}

static void give_easy(struct http *h, CURL *e)
{
	if (!e)
		return;
	if (h->n_pool < h->max_connections)
		h->pool[h->n_pool++] = e;
	else
		curl_easy_cleanup(e);
}

static int setup(struct http *h, struct xfer *x)
{
	struct http_request *r = x->req;
	CURL *e = x->easy;
	char line[600];
	struct curl_slist *l;

	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, h->allow_insecure ? "https,http" : "https");
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, h->timeout_s);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, h->connect_timeout_s);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "hybridsync");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	if (r->once) {
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	}
	if (strcmp(r->method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (r->body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
		snprintf(line, sizeof(line), "Content-Type: %s",
		         r->content_type ? r->content_type : "application/json");
		if (!(l = curl_slist_append(x->headers, line)))
			return -ENOMEM;
		x->headers = l;
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (!(l = curl_slist_append(x->headers, "Accept: application/json")))
		return -ENOMEM;
	x->headers = l;
	if (!(l = curl_slist_append(x->headers, "Expect:")))
		return -ENOMEM;
	x->headers = l;
	if (r->extra_header) {
		if (!(l = curl_slist_append(x->headers, r->extra_header)))
			return -ENOMEM;
		x->headers = l;
	}
	if (r->authorization) {
		/* Built on the heap: a token can be long; wiped after use (it is a credential). */
		size_t n = strlen(r->authorization) + sizeof("Authorization: ");
		char *a = malloc(n);
		if (!a)
			return -ENOMEM;
		snprintf(a, n, "Authorization: %s", r->authorization);
		l = curl_slist_append(x->headers, a);
		explicit_bzero(a, n);
		free(a);
		if (!l)
			return -ENOMEM;
		x->headers = l;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	return 0;
}

static void finish(struct http *h, struct xfer *x, CURLcode rc)
{
	struct http_request *r = x->req;
	long code = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK) {
		r->status = 0;
		r->error = x->too_big ? -EFBIG : map_curl_error(rc);
		snprintf(r->errmsg, sizeof(r->errmsg), "%s",
		         x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
		free(x->buf);
	} else {
		r->status = code;
		r->resp = x->buf;
		r->resp_len = x->len;
	}
	x->buf = NULL;
	curl_multi_remove_handle(h->multi, x->easy);
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	give_easy(h, x->easy);
	x->easy = NULL;
}

int http_perform(struct http *h, struct http_request *const *reqs, size_t n)
{
	struct xfer *xs;
	size_t next = 0, active = 0, done = 0;
	int r = 0;

	if (n == 0)
		return 0;
	xs = calloc(n, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		http_request_clear(reqs[i]);
		xs[i].req = reqs[i];
	}
	while (done < n) {
		int running = 0, left;
		CURLMsg *m;

		while (next < n && active < h->max_connections) {
			struct xfer *x = &xs[next++];
			x->easy = take_easy(h);
			if (!x->easy || setup(h, x) < 0 ||
			    curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
				x->req->error = -ENOMEM;
				snprintf(x->req->errmsg, sizeof(x->req->errmsg), "out of memory");
				curl_slist_free_all(x->headers);
				x->headers = NULL;
				if (x->easy)
					curl_easy_cleanup(x->easy);
				x->easy = NULL;
				done++;
				r = -ENOMEM;
				continue;
			}
			h->sent++;
			active++;
		}
		if (active == 0)
			continue;
		if (curl_multi_perform(h->multi, &running) != CURLM_OK) {
			r = -EIO;
			break;
		}
		while ((m = curl_multi_info_read(h->multi, &left))) {
			struct xfer *x = NULL;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			finish(h, x, m->data.result);
			active--;
			done++;
		}
		if (done < n && active > 0)
			curl_multi_poll(h->multi, NULL, 0, 200, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		/* only after a multi failure: abandon what is still attached */
		if (xs[i].easy) {
			curl_multi_remove_handle(h->multi, xs[i].easy);
			curl_easy_cleanup(xs[i].easy);
			curl_slist_free_all(xs[i].headers);
			free(xs[i].buf);
			xs[i].req->error = -EIO;
		}
	}
	free(xs);
	return r;
}
