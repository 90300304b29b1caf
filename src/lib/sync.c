/* The sync engine (see sync.h). Placeholder until the engine lands. */
#include <errno.h>

#include "hybridsync/sync.h"

int sync_rules_load(const struct conf *c, struct sync_rules **ret, struct conf_errors **ret_errors) {
	(void)c;
	(void)ret;
	if (ret_errors)
		*ret_errors = NULL;
	return -EOPNOTSUPP;
}
struct sync_rules *sync_rules_free(struct sync_rules *r) {
	(void)r;
	return NULL;
}
const char *const *sync_rules_attributes(const struct sync_rules *r, const char *connector,
                                         size_t *ret_n) {
	(void)r;
	(void)connector;
	*ret_n = 0;
	return NULL;
}
int sync_run(struct store *s, const struct sync_rules *r, const struct sync_opts *o,
             struct sync_result *ret) {
	(void)s;
	(void)r;
	(void)o;
	(void)ret;
	return -EOPNOTSUPP;
}
int sync_preview(struct store *s, const struct sync_rules *r, const char *key, char **ret_json) {
	(void)s;
	(void)r;
	(void)key;
	(void)ret_json;
	return -EOPNOTSUPP;
}
