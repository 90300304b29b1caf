/* Unit tests for the log module: level filtering, errno return convention, stderr format. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hybridsync/log.h"
#include "hybridsync/messages.h"

static char *capture_stderr(void (*fn)(void))
{
	static char buf[8192];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	fflush(stderr);
	dup2(fileno(tmp), STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

static void emit_levels(void)
{
	log_debug("hidden debug");
	log_info("shown info");
	log_error("shown error %d", 42);
}

static void emit_structured(void)
{
	struct log_ctx ctx = {.run_id = "7", .connector = "ad", .anchor = "abc"};
	log_full(LOG_WARNING, 0, HS_MSG_EXPORT_ERROR, &ctx, "export of %s failed", "x");
}

static void emit_hostile(void)
{
	/* a DN from a directory that holds a newline and a terminal escape */
	struct log_ctx ctx = {.run_id = "7", .dn = "CN=a\nhybridsync: warning: FORGED\x1b[31m"};
	log_full(LOG_WARNING, 0, HS_MSG_IMPORT_ERROR, &ctx, "import of %s failed: x", ctx.dn);
}

int main(void)
{
	char *out;

	unsetenv("JOURNAL_STREAM");
	log_setup("test", LOG_TARGET_AUTO);
	CHECK(log_get_target() == LOG_TARGET_STDERR);
	CHECK_STR_EQ(log_target_to_string(LOG_TARGET_JOURNAL), "journal");

	out = capture_stderr(emit_levels);
	CHECK(strstr(out, "hidden debug") == NULL);
	CHECK(strstr(out, "test: shown info\n") != NULL);
	CHECK(strstr(out, "test: error: shown error 42\n") != NULL);

	out = capture_stderr(emit_structured);
	CHECK(strstr(out, "test: warning: export of x failed") != NULL);

	CHECK_INT_EQ(log_full(LOG_DEBUG, EIO, NULL, NULL, "x"), -EIO);
	CHECK_INT_EQ(log_full(LOG_DEBUG, -ENOENT, NULL, NULL, "x"), -ENOENT);
	CHECK_INT_EQ(log_full(LOG_DEBUG, 0, NULL, NULL, "x"), 0);

	/* control characters never reach a line raw: one line, escaped */
	out = capture_stderr(emit_hostile);
	CHECK_STR_EQ(out, "test: warning: import of CN=a\\nhybridsync: warning: FORGED\\x1b[31m "
	                  "failed: x\n");
	/* HYBRIDSYNC_LOG_FIELDS=1: the journal's fields on the stderr line, escaped as well */
	setenv("HYBRIDSYNC_LOG_FIELDS", "1", 1);
	log_setup("test", LOG_TARGET_STDERR);
	out = capture_stderr(emit_hostile);
	CHECK_STR_EQ(out, "test: warning: import of CN=a\\nhybridsync: warning: FORGED\\x1b[31m "
	                  "failed: x MESSAGE_ID=" HS_MSG_IMPORT_ERROR " HYBRIDSYNC_RUN_ID=7 "
	                  "HYBRIDSYNC_DN=CN=a\\nhybridsync: warning: FORGED\\x1b[31m\n");
	unsetenv("HYBRIDSYNC_LOG_FIELDS");
	log_setup("test", LOG_TARGET_STDERR);
	out = capture_stderr(emit_structured);
	CHECK(strstr(out, "MESSAGE_ID") == NULL);

	log_set_max_level(LOG_DEBUG);
	CHECK_INT_EQ(log_get_max_level(), LOG_DEBUG);
	out = capture_stderr(emit_levels);
	CHECK(strstr(out, "test: debug: hidden debug") != NULL);

	return check_finish();
}
