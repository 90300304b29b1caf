/* The AD connector (see ldap_import.h). Placeholder until the connector lands. */
#include <errno.h>

#include "hybridsync/ldap_import.h"

int ldap_import(const struct conf_ad *conf, struct store *s, const struct ldap_import_opts *o,
                struct ldap_import_result *ret) {
	(void)conf;
	(void)s;
	(void)o;
	(void)ret;
	return -EOPNOTSUPP;
}
