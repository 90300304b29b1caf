/* The Graph connector (see graph.h). Placeholder until the connector lands. */
#include <errno.h>
#include <string.h>

#include "hybridsync/graph.h"

int graph_new(const struct conf *c, struct graph **ret, char *err, size_t err_len) {
	(void)c;
	(void)ret;
	if (err && err_len)
		err[0] = '\0';
	return -EOPNOTSUPP;
}
struct graph *graph_free(struct graph *g) {
	(void)g;
	return NULL;
}
int graph_set_conf(struct graph *g, const struct conf *c) {
	(void)g;
	(void)c;
	return -EOPNOTSUPP;
}
int graph_import(struct graph *g, struct store *s, const struct graph_import_opts *o,
                 struct graph_step_result *ret) {
	(void)g;
	(void)s;
	(void)o;
	(void)ret;
	return -EOPNOTSUPP;
}
int graph_export(struct graph *g, struct store *s, const struct graph_export_opts *o,
                 struct graph_step_result *ret) {
	(void)g;
	(void)s;
	(void)o;
	(void)ret;
	return -EOPNOTSUPP;
}
int graph_lease_read(struct graph *g, struct graph_lease *ret) {
	(void)g;
	(void)ret;
	return -EOPNOTSUPP;
}
int graph_lease_write(struct graph *g, const char *holder, const char *config_hash, int64_t now) {
	(void)g;
	(void)holder;
	(void)config_hash;
	(void)now;
	return -EOPNOTSUPP;
}
void graph_get_budget(const struct graph *g, struct graph_budget *ret) {
	(void)g;
	memset(ret, 0, sizeof(*ret));
}
