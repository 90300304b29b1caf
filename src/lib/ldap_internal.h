/* Private to the AD connector (src/lib/ldap*.c): the state of one import step and the helpers
 * shared by the full import (ldap_import.c), the delta methods (ldap_delta.c, ldap_syncrepl.c),
 * connection handling (ldap_conn.c) and entry decoding (ldap_entry.c). */
#pragma once

#include <lber.h>
#include <ldap.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "hybridsync/attr.h"
#include "hybridsync/ldap_import.h"

/* Bounds on what a server may send (per value, per object); beyond them an object is a
 * per-object error, never a crash or an unbounded allocation. */
#define LDAP_IMPORT_VALUE_MAX   (1u << 20) /* 1 MiB: thumbnailPhoto is at most 100 KiB in AD */
#define LDAP_IMPORT_REFS_MAX    (1u << 20) /* member values of one group (Entra's limit: 250k) */
#define LDAP_IMPORT_RANGE_STEPS 10000u     /* ranged follow-up searches of one attribute */
/* Bytes of values of one object (all attributes, references included), and values of one
 * object's attributes that are not references (each new value of an attribute is compared with
 * those before it). */
#define LDAP_IMPORT_OBJECT_MAX (128u << 20)
#define LDAP_IMPORT_VALUES_MAX 65536u
/* One LDAP message: an entry with LDAP_IMPORT_REFS_MAX member values of 200 bytes fits. */
#define LDAP_IMPORT_MESSAGE_MAX (256u << 20)
/* Pages in a row without an entry before a paged search is given up (AD may return a few). */
#define LDAP_IMPORT_EMPTY_PAGES 10000u
#define LDAP_IMPORT_ANCHOR_SIZE 16u
/* The CAs trusted when neither ca_file nor ldap.conf names any (Debian's ca-certificates). */
#define LDAP_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

#define LDAP_OID_PAGED           "1.2.840.113556.1.4.319"
#define LDAP_OID_DIRSYNC         "1.2.840.113556.1.4.841"
#define LDAP_OID_SHOW_DELETED    "1.2.840.113556.1.4.417"
#define LDAP_OID_SYNC            "1.3.6.1.4.1.4203.1.9.1.1"
#define LDAP_OID_AD_CAPABILITY   "1.2.840.113556.1.4.800" /* supportedCapabilities: an AD DC */
#define LDAP_DIRSYNC_INCREMENTAL 0x80000000u

/* A list of owned strings. */
struct lstrv {
	char **v;
	size_t n, cap;
};
int lstrv_push(struct lstrv *l, const char *s, size_t len);
void lstrv_clear(struct lstrv *l);

/* One object as read from one search entry. */
struct lobj {
	char *dn;        /* normalized (as sent when it cannot be parsed: dn_invalid) */
	bool dn_invalid; /* then err_code is set */
	uint8_t anchor[LDAP_IMPORT_ANCHOR_SIZE];
	bool has_anchor;
	const char *klass; /* static: user, inetOrgPerson, group, contact; NULL: not imported */
	bool has_object_class;
	bool deleted; /* isDeleted: TRUE (a tombstone) */
	/* The attributes: read as a whole object (LREAD_FULL), encoded for the store by the
	 * reading thread (the writing thread only copies the blob), else as a set. */
	struct attr_set *attrs;
	void *blob;
	size_t blob_len;
	uint8_t digest[ATTR_DIGEST_SIZE];
	struct lstrv cleared; /* attributes sent without values (DirSync: cleared) */
	struct lstrv member, manager;
	bool has_member, has_manager;
	struct lstrv member_add, member_del; /* DirSync incremental values */
	/* A per-object error: the object is reported, not imported. */
	char err_code[32];
	char err_msg[256];
	size_t bytes;    /* of the values read so far (LDAP_IMPORT_OBJECT_MAX) */
	size_t n_values; /* read so far, references aside (LDAP_IMPORT_VALUES_MAX) */
};
void lobj_clear(struct lobj *o);

enum lread_mode {
	LREAD_FULL,    /* every requested attribute; ranged values followed to the end */
	LREAD_DIRSYNC, /* changed attributes only; ranged member values are increments */
};

struct ldap_ctx {
	const struct conf_ad *conf;
	struct store *s;
	const struct ldap_import_opts *o;
	struct ldap_import_result *ret;
	LDAP *ld;
	int64_t connector_id;
	struct timeval timeout; /* per operation */

	/* from the rootDSE */
	bool is_ad, has_paged, has_dirsync, has_sync, has_show_deleted;
	char *nc;  /* the naming context holding base_dn (normalized; NULL when unknown) */
	char *usn; /* highestCommittedUSN at the start (AD), NULL when none */
	/* Which domain controller answers (AD): its invocationId in hex (it also changes when the
	 * DC is restored from a backup), else its dsServiceName; NULL unknown. USNs are per DC. */
	char *dc;

	char *filter; /* the object classes imported */
	char **attrs; /* NULL-terminated request list */
	size_t n_attrs;
	const char **attr_tab; /* the same names in an open-addressing table (ASCII case folded) */
	size_t attr_tab_cap;   /* a power of two, at least twice n_attrs */
	/* For reads of whole objects: on AD, member is asked for as member;range=0-1499, so ranged
	 * retrieval is taken (and tested) against any DC, not only those that force it. */
	char **attrs_read;
	struct lstrv include, exclude; /* normalized, nested includes removed */

	int64_t gen; /* full import or present-phase generation, 0 otherwise */
	uint64_t in_scope;
	uint64_t done;
	uint64_t estimate; /* the server's estimate of the entries (paged results), 0: unknown */
	uint64_t since_commit;
	bool in_txn;
	bool bulk; /* loading an empty connector space: larger transactions */
	/* Objects a delta import added to the connector space (created, or moved into scope):
	 * groups may already list them under a DN they had out of scope (ldelta_reread_groups). */
	struct lstrv added;
	/* DNs of objects that were reported instead of imported (a per-object error): on Active
	 * Directory each delta reads them again whole (lretry_run), since the cursor has moved
	 * past their change; kept with the cursor (lretry_save). */
	struct lstrv retry;
	/* Where lentry_read collects an entry's attributes (each thread that reads has its own;
	 * made when first needed). */
	struct attr_builder *ab;
	char trust[600]; /* the CAs a TLS connection trusts, for messages */
	char crl[300];   /* ", not revoked by TLS_CRLFILE '...'" when one is set, or empty */
};

/* ldap_delta.c: re-reads whole the groups in scope that list one of c->added (AD). */
int ldelta_reread_groups(struct ldap_ctx *c);
/* AD: 0 when a cursor set at `updated` (Unix seconds) is within the forest's tombstone
 * lifetime, else 2 (fall back to a full import; the reason is recorded). */
int ldelta_cursor_fresh(struct ldap_ctx *c, enum store_cursor_kind kind, int64_t updated);
/* At most this many objects with a per-object error are read again by each delta: beyond, the
 * next full import reads them. */
#define LDAP_IMPORT_RETRY_MAX 1000u
/* Remembers an object reported with a per-object error for the next delta (AD). */
int lretry_add(struct ldap_ctx *c, const struct lobj *o);
/* Reads whole the objects the last import could not read (AD): 0, 1 stopped, < 0. */
int lretry_run(struct ldap_ctx *c);
/* Stores c->retry with the cursor (in the import's last batch). */
int lretry_save(struct ldap_ctx *c);
/* The largest value imported (LDAP_IMPORT_VALUE_MAX): a variable so that tests can lower it. */
extern size_t ldap_import_value_max;

/* ldap_tls.c: connects (ldaps://) or runs StartTLS on ld, with a deadline of timeout_s seconds
 * on the TLS handshake that libldap 2.5 does not keep. *ret_rc: libldap's result. Returns 0,
 * 1 the deadline passed (the socket was shut down: the connection is unusable), < 0 errno. */
int ltls_handshake(LDAP *ld, bool starttls, int timeout_s, int *ret_rc);

/* ldap_conn.c */
int lconn_open(struct ldap_ctx *c);         /* 0 connected and bound, 1 stopped (status set) */
int lconn_read_rootdse(struct ldap_ctx *c); /* same */
bool lerr_is_down(int rc);
/* Sets ret->status and ret->error, records the error in the run history. Returns 1. */
int lstop(struct ldap_ctx *c, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A stop from an LDAP result code: down/timeouts are stopped-server-down, the rest
 * stopped-error. what: "search ou=x" etc. */
int lstop_ldap(struct ldap_ctx *c, int rc, const char *what);
/* Records why a delta import falls back to a full import (the first reason is kept). */
void lfallback(struct ldap_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The DN in the form ldap_dn2str(LDAP_DN_FORMAT_LDAPV3 | LDAP_DN_PRETTY) prints: 0 and *ret
 * (to free), -EINVAL not a DN, -ENOMEM. */
int ldn_normalize(const char *dn, char **ret);
/* True when the text is a DN already in that form (the common case, which skips parsing): ASCII
 * descriptor=value RDNs without escapes or specials. False says nothing. */
bool ldn_is_normal(const char *dn, size_t len);
bool ldn_is_under(const char *dn, const char *base); /* suffix on RDN boundaries, ASCII case */
bool lscope_in(const struct ldap_ctx *c, const char *dn);
int lctx_setup_scope(struct ldap_ctx *c);
int lctx_setup_attrs(struct ldap_ctx *c);
/* Whether the attribute (len bytes of name, ASCII case ignored) is in the request list. */
bool lattr_requested(const struct ldap_ctx *c, const char *name, size_t len);

/* ldap_entry.c */
/* 0: read (o->err_code set for a per-object error), 1: stopped (status set), < 0: local. */
int lentry_read(struct ldap_ctx *c, LDAPMessage *e, enum lread_mode mode, struct lobj *o);
/* Writes a full object (add, update, rename): upsert + references; counts it. */
int lobj_store_full(struct ldap_ctx *c, const struct lobj *o);
/* A per-object error to the run history and counters. */
int lobj_report_error(struct ldap_ctx *c, const struct lobj *o);
/* Marks the object with `anchor` pending delete (nothing when the anchor is unknown or already
 * pending delete). new_dn NULL: deleted in the directory, the references pointing at it are
 * dropped; else moved out of scope to new_dn. 0 or a negative errno. */
int lobj_delete(struct ldap_ctx *c, const void *anchor, size_t len, const char *new_dn);
int lanchor_from_uuid_text(const char *s, size_t len, uint8_t ret[LDAP_IMPORT_ANCHOR_SIZE]);
void lanchor_hex(const uint8_t *a, size_t len, char *out, size_t out_len);

/* Batched transactions: one per page (or page_size objects). */
#define LBATCH_BULK 32000
/* Objects per transaction: page_size, or at least LBATCH_BULK in a bulk load. */
uint64_t lbatch_size(const struct ldap_ctx *c);
int lbatch_begin(struct ldap_ctx *c);
int lbatch_commit(struct ldap_ctx *c);
void lbatch_rollback(struct ldap_ctx *c);
/* Counts one processed object; commits and reopens the batch every page_size objects; polls
 * the cancel callback and reports progress. Returns 1 when cancelled (status set). */
int lbatch_tick(struct ldap_ctx *c);
bool lcancelled(struct ldap_ctx *c);

/* Waits for one message of msgid with the operation timeout: 0 and *ret, or 1 stopped. */
int lresult_one(struct ldap_ctx *c, int msgid, LDAPMessage **ret);

/* ldap_import.c */
int lfull_import(struct ldap_ctx *c);

/* ldap_search.c */
typedef int (*lentry_fn)(struct ldap_ctx *c, LDAPMessage *e);
typedef int (*lobj_fn)(struct ldap_ctx *c, struct lobj *o);
/* A paged subtree search (with Show Deleted when asked). A second thread reads and decodes the
 * entries (lentry_read, LREAD_FULL: fn never touches the LDAP handle); every object goes to fn
 * in the caller's thread inside a batch, one commit per page. Returns 0, 1 stopped (status
 * set), < 0 local error. */
int lsearch_paged(struct ldap_ctx *c, const char *base, const char *filter, bool show_deleted,
                  lobj_fn fn);

/* ldap_delta.c */
/* 0 done, 1 stopped, 2 the cursor is expired: run a full import instead, 3 DirSync refused
 * (no replication right): poll uSNChanged. */
int ldelta_dirsync(struct ldap_ctx *c, const void *cookie, size_t len);
int ldelta_usn(struct ldap_ctx *c, const char *usn);
/* Stores the uSNChanged cursor "<dc> <highestCommittedUSN>" (nothing when unknown). */
int lusn_write(struct ldap_ctx *c);
int ldirsync_initial_cookie(struct ldap_ctx *c, struct berval *ret); /* 0, 2 refused, 1, <0 */

/* ldap_syncrepl.c */
int ldelta_syncrepl(struct ldap_ctx *c, const void *cookie, size_t len);
int lsync_initial_cookie(struct ldap_ctx *c, struct berval *ret);
