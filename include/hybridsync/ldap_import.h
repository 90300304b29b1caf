/* The AD connector: full and delta import from Active Directory or any LDAPv3 directory with an
 * immutable object id (OpenLDAP) into the 'ad' connector space. The only module with ldap.h.
 *
 * What lands in the store (the contract the sync engine reads):
 *  - anchor: the 16 raw bytes of objectGUID (AD) or of entryUUID (OpenLDAP, parsed from its
 *    text form; the same bytes RFC 4533 sends as syncUUID);
 *  - dn: the DN in the normalized LDAPv3 string form (ldap_str2dn + ldap_dn2str), so that
 *    references written by another server or escaped differently compare equal;
 *  - object_class: "user", "inetOrgPerson", "group" or "contact" (computers, OUs and other
 *    classes are not imported);
 *  - attrs: every requested attribute the server returned, binary values (objectGUID,
 *    objectSid, mS-DS-ConsistencyGuid) as raw bytes, ranged values merged;
 *  - references: `member` and `manager` are not attributes but rows of store_cs_set_refs() /
 *    store_cs_add_ref() (target DNs normalized the same way).
 * Every imported change sets the object's pending import (add/update/delete). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hybridsync/conf.h"
#include "hybridsync/store.h"

#define LDAP_IMPORT_CONNECTOR "ad"

enum ldap_import_mode {
	LDAP_IMPORT_DELTA, /* delta when a cursor and change_tracking allow it, else full */
	LDAP_IMPORT_FULL,
};

/* done: objects processed so far; estimate: expected total, 0 when unknown. */
typedef void (*ldap_import_progress_cb)(uint64_t done, uint64_t estimate, void *userdata);
/* Polled at batch boundaries; true stops the import (status "stopped-cancelled"), nothing
 * obsoleted. */
typedef bool (*ldap_import_cancelled_cb)(void *userdata);

struct ldap_import_opts {
	enum ldap_import_mode mode;
	/* The attributes the sync rules read; NULL: the default set (entra.md §3.3). Reference
	 * attributes and the anchor are always added. */
	const char *const *attributes;
	size_t n_attributes;
	int64_t run_id;  /* per-object errors go to the run history of this run/step */
	int64_t step_id; /* (0: not recorded) */
	ldap_import_progress_cb progress;
	ldap_import_cancelled_cb cancelled;
	void *userdata;
};

#define LDAP_IMPORT_STATUS_MAX 48
#define LDAP_IMPORT_ERROR_MAX  512

struct ldap_import_result {
	/* success, completed-warnings (per-object errors), stopped-server-down,
	 * stopped-connectivity, stopped-cancelled, stopped-error */
	char status[LDAP_IMPORT_STATUS_MAX];
	bool full;          /* a full import ran (asked for, or a fallback) */
	const char *method; /* "full", "dirsync", "usn", "syncrepl" (static string) */
	struct store_step_counters counters;
	char error[LDAP_IMPORT_ERROR_MAX]; /* why a stopped-* step stopped, with the LDAP error */
	/* stopped-connectivity because the server refused the bind itself (invalidCredentials,
	 * inappropriateAuthentication, insufficientAccessRights, confidentialityRequired,
	 * strongerAuthRequired), not because it could not be reached: trying again soon only
	 * counts more failed logons against the account (AD locks it out after a few). */
	bool bind_refused;
	/* Why a delta import did not run as its cursor said, with the server's answer: why it ran
	 * as a full import (full is then set: no cursor, or the server refused it), or why DirSync
	 * gave way to the uSNChanged poll; "" otherwise. */
	char note[LDAP_IMPORT_ERROR_MAX];
};

/* Runs one import step. Returns 0 when the step ran, whatever its status (a server that is
 * down is a status, not a failure of the call); a negative errno only for local failures
 * (-ENOMEM, store errors), with the store left consistent. Reads the bind password with
 * conf_read_secret() at every call, so a rotated secret needs no restart. */
int ldap_import(const struct conf_ad *conf, struct store *s, const struct ldap_import_opts *o,
                struct ldap_import_result *ret);
