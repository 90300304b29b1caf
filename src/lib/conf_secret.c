/* Secrets of the config (bind password, client secret, private key): where they live, checked
 * at load without being read, read on demand into a buffer the caller wipes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

/* Messages name a credential by its key only: a value that is not a path may be a password
 * written in the wrong place, and it must not reach a log.
 * Credentials: systemd's $CREDENTIALS_DIRECTORY is private to the service (a read-only mount
 * only its user can enter), so its files are not held to the mode rule of plain files. */
int conf_secret_check(struct conf_secret_ref *ref, const char *key, char *err, size_t errsize)
{
	char q[128];
	struct stat st;
	int fd;

	conf_quote(ref->value, q, sizeof(q));
	free(ref->path);
	ref->path = NULL;
	if (ref->credential) {
		const char *dir = getenv("CREDENTIALS_DIRECTORY");

		if (!dir || dir[0] != '/') {
			snprintf(err, errsize,
			         "%s names a systemd credential, but $CREDENTIALS_DIRECTORY is not "
			         "set (use LoadCredential= in the unit, or give an absolute path)",
			         key);
			return -EINVAL;
		}
		if (asprintf(&ref->path, "%s/%s", dir, ref->value) < 0) {
			ref->path = NULL;
			return -ENOMEM;
		}
	} else {
		ref->path = strdup(ref->value);
		if (!ref->path)
			return -ENOMEM;
	}

	fd = open(ref->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && ref->credential)
			snprintf(err, errsize,
			         "%s names a credential that is not in "
			         "$CREDENTIALS_DIRECTORY (see LoadCredential= in the unit)",
			         key);
		else if (errno == ENOENT)
			snprintf(err, errsize, "%s '%s' does not exist", key, q);
		else
			snprintf(err, errsize, "%s '%s' cannot be opened: %s", key, q,
			         strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errsize, "%s '%s': %s", key, q, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsize, "%s '%s' is not a regular file", key, q);
		goto fail;
	}
	if (ref->check_mode && !ref->credential && (st.st_mode & 077)) {
		snprintf(err, errsize,
		         "%s '%s' is accessible by group or others (mode %04o): chmod 600 it", key,
		         q, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size == 0) {
		snprintf(err, errsize, "%s '%s' is empty", key, q);
		goto fail;
	}
	if (st.st_size > (off_t)CONF_SECRET_MAX) {
		snprintf(err, errsize, "%s '%s' is larger than %u bytes", key, q, CONF_SECRET_MAX);
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -EINVAL;
}

int conf_read_secret(const struct conf_secret_ref *ref, char **ret, size_t *ret_len)
{
	struct stat st;
	char *buf = NULL;
	size_t size, len = 0;
	int fd, r;

	if (!ref || !ref->value || !ref->path)
		return -ENOENT;
	fd = open(ref->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if (ref->check_mode && !ref->credential && (st.st_mode & 077)) {
		r = -EPERM;
		goto out;
	}
	if (st.st_size > (off_t)CONF_SECRET_MAX) {
		r = -EFBIG;
		goto out;
	}
	/* One byte more than the size says, to notice a file that grew meanwhile. */
	size = (size_t)st.st_size + 1;
	buf = malloc(size + 1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size) {
			r = -EFBIG; /* changed while we read it */
			goto out;
		}
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	if (len == 0) {
		r = -ENODATA;
		goto out;
	}
	*ret = buf;
	*ret_len = len;
	buf = NULL;
	r = 0;
out:
	if (buf) {
		explicit_bzero(buf, size + 1);
		free(buf);
	}
	close(fd);
	return r;
}

char *secret_free(char *secret, size_t len)
{
	if (secret) {
		explicit_bzero(secret, len);
		free(secret);
	}
	return NULL;
}
