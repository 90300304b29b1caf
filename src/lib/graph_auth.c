/* OAuth2 client credentials for the Graph connector: a client secret, or a certificate (a
 * client assertion JWT signed RS256 with the x5t#S256 header). Tokens are cached and renewed
 * before they expire; secrets are read for the request and wiped right after. */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "graph_internal.h"
#include "hybridsync/log.h"

#define ASSERTION_LIFETIME_S 300
#define GRAPH_SCOPE          "https://graph.microsoft.com/.default"

static char *b64url(const unsigned char *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3) + 1;
	char *out = malloc(n);
	int k;

	if (!out)
		return NULL;
	k = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	while (k > 0 && out[k - 1] == '=')
		k--;
	out[k] = '\0';
	for (int i = 0; i < k; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	}
	return out;
}

static char *b64url_json(cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j), *out;

	if (!s)
		return NULL;
	out = b64url((const unsigned char *)s, strlen(s));
	cJSON_free(s);
	return out;
}

/* The client assertion for `aud` (the token URL). */
static int make_assertion(struct graph *g, const char *aud, char **ret, char *err, size_t err_len)
{
	char *cert = NULL, *key = NULL, *h64 = NULL, *p64 = NULL, *s64 = NULL, *input = NULL;
	size_t cert_len = 0, key_len = 0, in_len, sig_len = 0;
	unsigned char *der = NULL, digest[SHA256_DIGEST_LENGTH], sig[1024], rnd[16];
	cJSON *hdr = NULL, *pay = NULL;
	X509 *x = NULL;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	BIO *bio = NULL;
	char *thumb = NULL, jti[40];
	int r, dlen;
	time_t now = time(NULL);

	r = conf_read_secret(&g->certificate, &cert, &cert_len);
	if (r < 0) {
		snprintf(err, err_len, "cannot read the certificate: %s", strerror(-r));
		goto out;
	}
	r = conf_read_secret(&g->key, &key, &key_len);
	if (r < 0) {
		snprintf(err, err_len, "cannot read the private key: %s", strerror(-r));
		goto out;
	}
	r = -EINVAL;
	bio = BIO_new_mem_buf(cert, (int)cert_len);
	x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	bio = NULL;
	if (!x) {
		snprintf(err, err_len, "the certificate is not a PEM X.509 certificate");
		goto out;
	}
	bio = BIO_new_mem_buf(key, (int)key_len);
	pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	bio = NULL;
	if (!pk || EVP_PKEY_base_id(pk) != EVP_PKEY_RSA) {
		snprintf(err, err_len, "the private key is not an unencrypted PEM RSA key");
		goto out;
	}
	dlen = i2d_X509(x, &der);
	if (dlen <= 0 || !SHA256(der, (size_t)dlen, digest)) {
		snprintf(err, err_len, "cannot encode the certificate");
		goto out;
	}
	r = -ENOMEM;
	thumb = b64url(digest, sizeof(digest));
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		r = -EIO;
		goto out;
	}
	snprintf(jti, sizeof(jti),
	         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", rnd[0],
	         rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], rnd[8], rnd[9], rnd[10],
	         rnd[11], rnd[12], rnd[13], rnd[14], rnd[15]);
	hdr = cJSON_CreateObject();
	pay = cJSON_CreateObject();
	if (!thumb || !hdr || !pay || !cJSON_AddStringToObject(hdr, "alg", "RS256") ||
	    !cJSON_AddStringToObject(hdr, "typ", "JWT") ||
	    !cJSON_AddStringToObject(hdr, "x5t#S256", thumb) ||
	    !cJSON_AddStringToObject(pay, "aud", aud) ||
	    !cJSON_AddStringToObject(pay, "iss", g->client_id) ||
	    !cJSON_AddStringToObject(pay, "sub", g->client_id) ||
	    !cJSON_AddStringToObject(pay, "jti", jti) ||
	    !cJSON_AddNumberToObject(pay, "iat", (double)now) ||
	    !cJSON_AddNumberToObject(pay, "nbf", (double)now) ||
	    !cJSON_AddNumberToObject(pay, "exp", (double)(now + ASSERTION_LIFETIME_S)))
		goto out;
	h64 = b64url_json(hdr);
	p64 = b64url_json(pay);
	if (!h64 || !p64)
		goto out;
	in_len = strlen(h64) + strlen(p64) + 2;
	input = malloc(in_len + 1 + 4 * sizeof(sig) / 3 + 4);
	if (!input)
		goto out;
	snprintf(input, in_len, "%s.%s", h64, p64);
	md = EVP_MD_CTX_new();
	sig_len = sizeof(sig);
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input, strlen(input)) != 1) {
		snprintf(err, err_len, "cannot sign the client assertion");
		r = -EINVAL;
		goto out;
	}
	s64 = b64url(sig, sig_len);
	if (!s64)
		goto out;
	size_t k = strlen(input);
	snprintf(input + k, in_len + 1 + 4 * sizeof(sig) / 3 + 4 - k, ".%s", s64);
	*ret = input;
	input = NULL;
	r = 0;
out:
	if (r == -ENOMEM && !err[0])
		snprintf(err, err_len, "out of memory");
	secret_free(cert, cert_len);
	secret_free(key, key_len);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(pk);
	EVP_MD_CTX_free(md);
	cJSON_Delete(hdr);
	cJSON_Delete(pay);
	free(thumb);
	free(h64);
	free(p64);
	free(s64);
	free(input);
	return r;
}

static int append(char **buf, size_t *len, size_t *cap, const char *key, const char *value)
{
	char *v = http_escape(value);
	size_t need;

	if (!v)
		return -ENOMEM;
	need = *len + strlen(key) + strlen(v) + 3;
	if (need > *cap) {
		size_t c = need * 2;
		char *b = malloc(c);
		if (!b) {
			free(v);
			return -ENOMEM;
		}
		if (*buf) {
			memcpy(b, *buf, *len + 1);
			explicit_bzero(*buf, *cap);
			free(*buf);
		}
		*buf = b;
		*cap = c;
	}
	*len += (size_t)snprintf(*buf + *len, *cap - *len, "%s%s=%s", *len ? "&" : "", key, v);
	explicit_bzero(v, strlen(v));
	free(v);
	return 0;
}

static void token_error(struct graph *g, const struct http_request *req)
{
	cJSON *j = req->resp ? cJSON_ParseWithLength(req->resp, req->resp_len) : NULL;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");

	if (req->status == 0)
		graph_fail(g, "stopped-connectivity", "token request to %s failed: %s",
		           g->authority, req->errmsg);
	else
		graph_fail(g, "stopped-connectivity", "token request refused (HTTP %ld, %s): %s",
		           req->status, cJSON_IsString(e) ? e->valuestring : "no error code",
		           cJSON_IsString(d) ? d->valuestring : "no description");
	cJSON_Delete(j);
}

int graph_token(struct graph *g, bool force)
{
	char url[1024], err[GRAPH_ERROR_MAX] = "";
	char *form = NULL, *secret = NULL, *assertion = NULL;
	size_t len = 0, cap = 0, secret_len = 0;
	struct http_request req = {0};
	struct http_request *rp = &req;
	cJSON *j = NULL;
	int r;

	if (!force && g->token && graph_now() < g->token_renew)
		return 0;
	snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", g->authority, g->tenant);
	r = append(&form, &len, &cap, "grant_type", "client_credentials");
	if (r >= 0)
		r = append(&form, &len, &cap, "client_id", g->client_id);
	if (r >= 0)
		r = append(&form, &len, &cap, "scope", GRAPH_SCOPE);
	if (r >= 0 && g->client_secret.path) {
		r = conf_read_secret(&g->client_secret, &secret, &secret_len);
		if (r < 0) {
			graph_fail(g, "stopped-connectivity", "cannot read the client secret: %s",
			           strerror(-r));
			goto out;
		}
		r = append(&form, &len, &cap, "client_secret", secret);
	} else if (r >= 0) {
		r = make_assertion(g, url, &assertion, err, sizeof(err));
		if (r < 0) {
			graph_fail(g, "stopped-connectivity",
			           "cannot make the client assertion: %s", err);
			goto out;
		}
		r = append(&form, &len, &cap, "client_assertion_type",
		           "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
		if (r >= 0)
			r = append(&form, &len, &cap, "client_assertion", assertion);
	}
	if (r < 0) {
		graph_fail(g, "stopped-error", "out of memory");
		goto out;
	}
	req.method = "POST";
	req.url = url;
	req.body = form;
	req.body_len = len;
	req.content_type = "application/x-www-form-urlencoded";
	/* the lifetime counts from when the token was issued: at the latest when asked for */
	double asked = graph_now();
	for (unsigned attempt = 1;; attempt++) {
		r = http_perform(g->http, &rp, 1);
		if (r < 0)
			goto out;
		if (req.status == 429 || req.status == 503)
			g->throttled_total++;
		if (req.status != 0 && req.status < 500 && req.status != 429)
			break;
		if (attempt >= 5 || req.error == -EPROTO || req.error == -EPROTONOSUPPORT) {
			token_error(g, &req);
			r = -EACCES;
			goto out;
		}
		graph_sleep(req.retry_after >= 0 ? (double)req.retry_after : 0.5 * attempt);
		asked = graph_now();
	}
	if (req.status != 200) {
		token_error(g, &req);
		r = -EACCES;
		goto out;
	}
	j = cJSON_ParseWithLength(req.resp, req.resp_len);
	const cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	if (!cJSON_IsString(tok) || !tok->valuestring[0]) {
		graph_fail(g, "stopped-connectivity",
		           "the token endpoint answered no access_token");
		r = -EACCES;
		goto out;
	}
	double life = cJSON_IsNumber(exp) ? exp->valuedouble : 3599;
	char *t = strdup(tok->valuestring);
	if (!t) {
		r = -ENOMEM;
		goto out;
	}
	if (g->token) {
		explicit_bzero(g->token, g->token_len);
		free(g->token);
	}
	g->token = t;
	g->token_len = strlen(t);
	/* renew with a quarter of the lifetime (at most 5 minutes) left */
	g->token_renew = asked + life - (life / 4 < 300 ? life / 4 : 300);
	log_debug("Graph access token obtained, valid %.0fs", life);
	r = 0;
out:
	if (j) {
		cJSON *tk = cJSON_GetObjectItemCaseSensitive(j, "access_token");
		if (cJSON_IsString(tk))
			explicit_bzero(tk->valuestring, strlen(tk->valuestring));
		cJSON_Delete(j);
	}
	if (req.resp)
		explicit_bzero(req.resp, req.resp_len);
	http_request_clear(&req);
	if (form) {
		explicit_bzero(form, cap);
		free(form);
	}
	secret_free(secret, secret_len);
	if (assertion) {
		explicit_bzero(assertion, strlen(assertion));
		free(assertion);
	}
	return r;
}
