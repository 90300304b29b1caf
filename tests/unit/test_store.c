/* Unit tests for the store against real SQLite files in a temporary directory: migrations,
 * version refusal, CS change detection, pending imports, references, the MV join index,
 * pending-export upserts and fingerprint, run history, read-only opens beside a writer,
 * backups and corruption detection. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "hybridsync/attr.h"
#include "hybridsync/store.h"
#include "../../src/lib/store_internal.h" /* store_bulk_map_max */

static char tmpdir[256];

static const char *path_in(const char *name)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", tmpdir, name);
	return p;
}

static struct store *open_rw(const char *name)
{
	struct store *s = NULL;
	char err[256] = "";
	int r = store_open(path_in(name), 0, &s, err, sizeof(err));

	if (r < 0)
		fprintf(stderr, "store_open %s: %s (%s)\n", name, strerror(-r), err);
	CHECK_INT_EQ(r, 0);
	return s;
}

static struct attr_set *person(const char *cn, const char *upn, const char *title)
{
	struct attr_set *a = attr_set_new();

	attr_set_add_string(a, "cn", cn);
	attr_set_add_string(a, "userPrincipalName", upn);
	if (title)
		attr_set_add_string(a, "title", title);
	attr_set_add_string(a, "objectClass", "top");
	attr_set_add_string(a, "objectClass", "user");
	return a;
}

static int upsert(struct store *s, int64_t conn, const char *anchor, const char *dn,
                  const char *cls, const struct attr_set *a, int64_t gen,
                  enum store_upsert_result *res, int64_t *id)
{
	struct store_cs_import in = {
	    .anchor = anchor,
	    .anchor_len = strlen(anchor),
	    .dn = dn,
	    .object_class = cls,
	    .attrs = a,
	    .run_id = 0,
	    .seen_gen = gen,
	};
	return store_cs_upsert(s, conn, &in, res, id);
}

/* Reads a 32-bit big-endian integer of the SQLite header, or writes one. */
static void header_u32(const char *path, long off, uint32_t *get, const uint32_t *set)
{
	uint8_t b[4];
	int fd = open(path, O_RDWR);

	CHECK(fd >= 0);
	if (set) {
		b[0] = (uint8_t)(*set >> 24);
		b[1] = (uint8_t)(*set >> 16);
		b[2] = (uint8_t)(*set >> 8);
		b[3] = (uint8_t)*set;
		CHECK(pwrite(fd, b, 4, off) == 4);
	}
	if (get) {
		CHECK(pread(fd, b, 4, off) == 4);
		*get = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	}
	close(fd);
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;
	int r = 0;

	if (in < 0 || out < 0)
		r = -1;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			r = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return r;
}

/* --- open, migrations, versions ------------------------------------------------------------ */

static void test_open_and_versions(void)
{
	struct store *s, *ro = NULL;
	char err[256] = "";
	int64_t ad = 0, graph = 0, g1 = 0, g2 = 0;
	uint32_t v = 0, newer;
	char *value = NULL;
	int fd;

	CHECK(store_close(NULL) == NULL);
	s = open_rw("open.db");
	CHECK(store_get_connector(s, "ad", &ad) == 0 && ad > 0);
	CHECK(store_get_connector(s, "graph", &graph) == 0 && graph != ad);
	CHECK_INT_EQ(store_get_connector(s, "nope", &ad), -ENOENT);
	CHECK(strstr(store_last_error(s), "nope") != NULL);
	CHECK(store_next_generation(s, &g1) == 0);
	CHECK(store_next_generation(s, &g2) == 0);
	CHECK_INT_EQ(g2, g1 + 1);
	CHECK(store_state_set(s, "k", "v1") == 0);
	CHECK(store_state_set(s, "k", "v2") == 0);
	CHECK(store_state_get(s, "k", &value) == 0);
	CHECK_STR_EQ(value, "v2");
	free(value);
	CHECK(store_state_set(s, "k", NULL) == 0);
	CHECK_INT_EQ(store_state_get(s, "k", &value), -ENOENT);
	CHECK(store_check_integrity(s, true) == 0);
	CHECK(store_check_integrity(s, false) == 0);
	s = store_close(s);

	/* reopening migrates nothing and keeps the data */
	s = open_rw("open.db");
	CHECK(store_next_generation(s, &g1) == 0);
	CHECK_INT_EQ(g1, g2 + 1);
	s = store_close(s);
	header_u32(path_in("open.db"), 60, &v, NULL);
	CHECK_INT_EQ(v, store_schema_version());

	/* a newer schema is refused, read-write and read-only, with a clear message */
	newer = (uint32_t)store_schema_version() + 1;
	header_u32(path_in("open.db"), 60, NULL, &newer);
	CHECK_INT_EQ(store_open(path_in("open.db"), 0, &s, err, sizeof(err)), -EPROTO);
	CHECK(strstr(err, "newer") != NULL);
	CHECK_INT_EQ(store_open(path_in("open.db"), STORE_OPEN_READONLY, &ro, err, sizeof(err)),
	             -EPROTO);
	header_u32(path_in("open.db"), 60, NULL, &v);
	s = open_rw("open.db");
	s = store_close(s);

	/* not a database; not ours; missing */
	fd = open(path_in("garbage.db"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(write(fd, "this is not a database, just some text that is long enough", 59) == 59);
	close(fd);
	CHECK_INT_EQ(store_open(path_in("garbage.db"), 0, &s, err, sizeof(err)), -EBADMSG);
	CHECK(err[0] != 0);
	newer = 0x12345678;
	copy_file(path_in("open.db"), path_in("foreign.db"));
	header_u32(path_in("foreign.db"), 68, NULL, &newer); /* application_id */
	CHECK_INT_EQ(store_open(path_in("foreign.db"), 0, &s, err, sizeof(err)), -EPROTO);
	CHECK(strstr(err, "not a hybridsync database") != NULL);
	CHECK_INT_EQ(store_open(path_in("missing.db"), STORE_OPEN_READONLY, &ro, err, sizeof(err)),
	             -ENOENT);
	CHECK_INT_EQ(store_open(path_in("missing.db"), STORE_OPEN_NOCREATE, &ro, NULL, 0), -ENOENT);
	CHECK(access(path_in("missing.db"), F_OK) < 0);
}

/* --- connector space ----------------------------------------------------------------------- */

struct collect {
	int n;
	int64_t ids[64];
	enum store_pending_import pending[64];
};

static int collect_cs(const struct store_cs_object *o, void *userdata)
{
	struct collect *c = userdata;

	if (c->n < 64) {
		c->ids[c->n] = o->id;
		c->pending[c->n] = o->pending_import;
	}
	c->n++;
	return 0;
}

static void test_cs(void)
{
	struct store *s = open_rw("cs.db");
	struct store_cs_object *o = NULL;
	struct attr_set *a = person("John", "john@corp.example.com", "Engineer");
	struct attr_set *b;
	enum store_upsert_result res;
	struct collect col = {0};
	int64_t ad, id, id2, gen1, gen2;
	uint64_t total, pending, n;
	char *name;
	void *cur;
	size_t len;
	static const uint8_t cookie[] = {0, 1, 2, 0, 255};

	store_get_connector(s, "ad", &ad);

	/* cursors are binary-safe */
	CHECK_INT_EQ(store_get_cursor(s, ad, "DC=corp", STORE_CURSOR_DIRSYNC, &cur, &len, NULL),
	             -ENOENT);
	CHECK(store_set_cursor(s, ad, "DC=corp", STORE_CURSOR_DIRSYNC, cookie, sizeof(cookie)) ==
	      0);
	CHECK(store_get_cursor(s, ad, "DC=corp", STORE_CURSOR_DIRSYNC, &cur, &len, NULL) == 0);
	CHECK(len == sizeof(cookie) && memcmp(cur, cookie, len) == 0);
	free(cur);
	CHECK(store_delete_cursors(s, ad) == 0);
	CHECK_INT_EQ(store_get_cursor(s, ad, "DC=corp", STORE_CURSOR_DIRSYNC, &cur, &len, NULL),
	             -ENOENT);

	/* add, unchanged, changed */
	CHECK(store_next_generation(s, &gen1) == 0);
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Staff,DC=corp", "user", a, gen1, &res, &id) == 0);
	CHECK_INT_EQ(res, STORE_ADDED);
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Staff,DC=corp", "user", a, gen1, &res, &id2) ==
	      0);
	CHECK_INT_EQ(res, STORE_UNCHANGED);
	CHECK_INT_EQ(id2, id);
	CHECK(store_cs_get(s, id, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_ADD);
	CHECK(o->pending_import_since > 0);
	CHECK_STR_EQ(attr_set_get_string(o->attrs, "title"), "Engineer");
	CHECK(attr_set_equal(o->attrs, a));
	o = store_cs_object_free(o);

	/* same values in another order and case of names: unchanged */
	b = attr_set_new();
	attr_set_add_string(b, "OBJECTCLASS", "user");
	attr_set_add_string(b, "objectclass", "top");
	attr_set_add_string(b, "title", "Engineer");
	attr_set_add_string(b, "UserPrincipalName", "john@corp.example.com");
	attr_set_add_string(b, "CN", "John");
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Staff,DC=corp", "user", b, 0, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_UNCHANGED);
	attr_set_free(b);

	/* a change before sync keeps the pending add */
	attr_set_set_string(a, "title", "Senior Engineer");
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Staff,DC=corp", "user", a, 0, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_CHANGED);
	CHECK(store_cs_get(s, id, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_ADD);
	o = store_cs_object_free(o);

	/* after sync: update; rename; class change */
	CHECK(store_cs_clear_pending_import(s, id) == 0);
	CHECK(store_cs_get(s, id, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_NONE);
	CHECK_INT_EQ(o->pending_import_since, 0);
	o = store_cs_object_free(o);
	attr_set_set_string(a, "title", "Architect");
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Staff,DC=corp", "user", a, 0, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_CHANGED);
	CHECK(store_cs_get_by_anchor(s, ad, "guid-1", 6, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_UPDATE);
	o = store_cs_object_free(o);
	CHECK(store_cs_clear_pending_import(s, id) == 0);
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Moved,DC=corp", "user", a, 0, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_CHANGED);
	CHECK(store_cs_get_by_dn(s, ad, "cn=john,ou=MOVED,dc=corp", &o) ==
	      0); /* case-insensitive */
	CHECK_INT_EQ(o->id, id);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_UPDATE);
	o = store_cs_object_free(o);
	CHECK_INT_EQ(store_cs_get_by_dn(s, ad, "CN=John,OU=Staff,DC=corp", &o), -ENOENT);
	CHECK(store_cs_clear_pending_import(s, id) == 0);
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Moved,DC=corp", "contact", a, 0, &res, NULL) ==
	      0);
	CHECK_INT_EQ(res, STORE_CHANGED);
	CHECK(store_cs_get(s, id, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_DELETE_ADD);
	CHECK_STR_EQ(store_pending_import_to_string(o->pending_import), "delete-add");
	o = store_cs_object_free(o);
	CHECK(store_cs_clear_pending_import(s, id) == 0);

	/* full import obsoletion by generation: gen1 saw 5 objects, gen2 sees 3 */
	for (int i = 2; i <= 5; i++) {
		char anchor[16], dn[64];
		snprintf(anchor, sizeof(anchor), "guid-%d", i);
		snprintf(dn, sizeof(dn), "CN=u%d,OU=Staff,DC=corp", i);
		CHECK(upsert(s, ad, anchor, dn, "user", a, gen1, &res, NULL) == 0);
		CHECK_INT_EQ(res, STORE_ADDED);
	}
	CHECK(store_cs_count(s, ad, &total, &pending) == 0);
	CHECK_INT_EQ(total, 5);
	CHECK_INT_EQ(pending, 4);
	CHECK(store_next_generation(s, &gen2) == 0);
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Moved,DC=corp", "contact", a, gen2, &res, NULL) ==
	      0);
	CHECK_INT_EQ(res, STORE_UNCHANGED);
	CHECK(upsert(s, ad, "guid-2", "CN=u2,OU=Staff,DC=corp", "user", a, gen2, &res, NULL) == 0);
	CHECK(store_cs_get_by_anchor(s, ad, "guid-3", 6, &o) == 0);
	CHECK(store_cs_mark_seen(s, o->id, gen2) == 0);
	o = store_cs_object_free(o);
	CHECK(store_cs_count_unseen(s, ad, gen2, &n) == 0);
	CHECK_INT_EQ(n, 2);
	CHECK(store_cs_mark_unseen_as_deleted(s, ad, gen2, &n) == 0);
	CHECK_INT_EQ(n, 2);
	CHECK(store_cs_mark_unseen_as_deleted(s, ad, gen2, &n) == 0);
	CHECK_INT_EQ(n, 0); /* idempotent */
	CHECK(store_cs_get_by_anchor(s, ad, "guid-5", 6, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_DELETE);
	o = store_cs_object_free(o);

	/* streaming over pending imports */
	CHECK(store_cs_iterate_pending_import(s, ad, collect_cs, &col) == 0);
	CHECK_INT_EQ(col.n, 4); /* guid-2, 3 (adds), 4, 5 (deletes) */
	CHECK_INT_EQ(col.pending[0], STORE_PENDING_ADD);
	CHECK_INT_EQ(col.pending[3], STORE_PENDING_DELETE);
	col.n = 0;
	CHECK(store_cs_iterate(s, ad, collect_cs, &col) == 0);
	CHECK_INT_EQ(col.n, 5);

	/* a delta-import delete, a reappearing object, removal */
	CHECK(store_cs_mark_deleted(s, ad, "guid-2", 6) == 0);
	CHECK_INT_EQ(store_cs_mark_deleted(s, ad, "guid-9", 6), -ENOENT);
	CHECK(upsert(s, ad, "guid-5", "CN=u5,OU=Staff,DC=corp", "user", a, 0, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_CHANGED); /* back from a pending delete */
	CHECK(store_cs_get_by_anchor(s, ad, "guid-4", 6, &o) == 0);
	CHECK(store_cs_delete(s, o->id) == 0);
	CHECK_INT_EQ(store_cs_delete(s, o->id), -ENOENT);
	o = store_cs_object_free(o);
	CHECK(store_cs_set_flags(s, id, STORE_CS_TRANSIENT, 0) == 0);
	CHECK(store_cs_get(s, id, &o) == 0);
	CHECK(o->flags & STORE_CS_TRANSIENT);
	o = store_cs_object_free(o);
	CHECK(upsert(s, ad, "guid-1", "CN=John,OU=Moved,DC=corp", "contact", a, 0, &res, NULL) ==
	      0);
	CHECK_INT_EQ(res, STORE_CHANGED); /* an import clears a transient */
	CHECK(store_cs_get(s, id, &o) == 0);
	CHECK(!(o->flags & STORE_CS_TRANSIENT));
	o = store_cs_object_free(o);

	CHECK_INT_EQ(upsert(s, ad, "", "CN=x", "user", a, 0, &res, NULL), -EINVAL);
	CHECK_INT_EQ(upsert(s, ad, "g", "CN=x", NULL, a, 0, &res, NULL), -EINVAL);
	CHECK_INT_EQ(upsert(s, 9999, "g", "CN=x", "user", a, 0, &res, NULL), -ENOENT); /* FK */
	name = NULL;
	(void)name;

	attr_set_free(a);
	store_close(s);
}

/* --- references --------------------------------------------------------------------------- */

struct refs {
	int n;
	char dn[8][64];
	int64_t target[8];
	int64_t cs_id[8];
};

static int collect_ref(const struct store_ref *r, void *userdata)
{
	struct refs *c = userdata;

	if (c->n < 8) {
		snprintf(c->dn[c->n], sizeof(c->dn[0]), "%s", r->target_dn);
		c->target[c->n] = r->target_cs_id;
		c->cs_id[c->n] = r->cs_id;
	}
	c->n++;
	return 0;
}

static int count_ref(const struct store_ref *r, void *userdata)
{
	(void)r;
	(*(size_t *)userdata)++;
	return 0;
}

static void test_refs(void)
{
	struct store *s = open_rw("refs.db");
	struct attr_set *a = attr_set_new();
	struct store_cs_object *o = NULL;
	struct refs c = {0};
	int64_t ad, group, alice, bob, carol;
	size_t changes = 0, counted = 0;
	uint64_t n;
	const char *members[] = {"CN=Alice,DC=corp", "CN=Bob,DC=corp", "cn=carol,dc=corp"};
	const char *members2[] = {"CN=Alice,DC=corp", "CN=BOB,DC=CORP", "CN=Dave,DC=corp"};
	static char big_text[50001][40];
	static const char *big[50001];

	store_get_connector(s, "ad", &ad);
	attr_set_add_string(a, "cn", "x");
	CHECK(upsert(s, ad, "g", "CN=Group,DC=corp", "group", a, 0, NULL, &group) == 0);
	CHECK(upsert(s, ad, "a", "CN=Alice,DC=corp", "user", a, 0, NULL, &alice) == 0);
	CHECK(upsert(s, ad, "b", "CN=Bob,DC=corp", "user", a, 0, NULL, &bob) == 0);
	CHECK(store_cs_clear_pending_import(s, group) == 0);

	CHECK(store_cs_set_refs(s, group, "member", members, 3, &changes) == 0);
	CHECK_INT_EQ(changes, 3);
	CHECK(store_cs_get(s, group, &o) == 0);
	CHECK_INT_EQ(o->pending_import, STORE_PENDING_UPDATE); /* a reference change is a change */
	o = store_cs_object_free(o);
	CHECK(store_cs_set_refs(s, group, "MEMBER", members, 3, &changes) == 0);
	CHECK_INT_EQ(changes, 0);

	/* carol is imported after the group: resolved lazily on read, then for good */
	CHECK(store_cs_get_refs(s, group, "member", collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 3);
	CHECK_INT_EQ(c.target[0], alice);
	CHECK_INT_EQ(c.target[1], bob);
	CHECK_INT_EQ(c.target[2], 0);
	CHECK(upsert(s, ad, "c", "CN=Carol,DC=corp", "user", a, 0, NULL, &carol) == 0);
	c.n = 0;
	CHECK(store_cs_get_refs(s, group, NULL, collect_ref, &c) == 0);
	CHECK_INT_EQ(c.target[2], carol);
	c.n = 0;
	CHECK(store_cs_get_referrers(s, carol, collect_ref, &c) == 0); /* by DN, unresolved */
	CHECK_INT_EQ(c.n, 1);
	CHECK_INT_EQ(c.cs_id[0], group);
	CHECK(store_cs_resolve_refs(s, ad, &n) == 0);
	CHECK_INT_EQ(n, 1);
	c.n = 0;
	CHECK(store_cs_get_referrers(s, carol, collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 1);

	/* one member replaced: two rows, the case-only difference is no change */
	CHECK(store_cs_set_refs(s, group, "member", members2, 3, &changes) == 0);
	CHECK_INT_EQ(changes, 2);
	CHECK_INT_EQ(store_cs_add_ref(s, group, "member", "CN=Dave,DC=corp"), 0);
	CHECK_INT_EQ(store_cs_add_ref(s, group, "manager", "CN=Alice,DC=corp"), 1);
	CHECK_INT_EQ(store_cs_remove_ref(s, group, "manager", "CN=Alice,DC=corp"), 1);
	CHECK_INT_EQ(store_cs_remove_ref(s, group, "manager", "CN=Alice,DC=corp"), 0);

	/* a rename follows into the referencing rows */
	CHECK(upsert(s, ad, "a", "CN=Alice Smith,DC=corp", "user", a, 0, NULL, NULL) == 0);
	c.n = 0;
	CHECK(store_cs_get_refs(s, group, "member", collect_ref, &c) == 0);
	CHECK_STR_EQ(c.dn[0], "CN=Alice Smith,DC=corp");
	CHECK_INT_EQ(c.target[0], alice);

	/* deleting a member object unresolves its rows; deleting the group removes them */
	CHECK(store_cs_delete(s, bob) == 0);
	c.n = 0;
	CHECK(store_cs_get_refs(s, group, "member", collect_ref, &c) == 0);
	CHECK_INT_EQ(c.target[1], 0);
	CHECK_STR_EQ(c.dn[1], "CN=Bob,DC=corp"); /* the deleted object's DN, kept as text */
	c.n = 0;
	CHECK(store_cs_get_referrers(s, alice, collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 1);
	CHECK_STR_EQ(c.dn[0], "CN=Alice Smith,DC=corp");

	/* an unresolved value whose object has appeared since is the same value as the object's
	 * DN: adding it again or setting it changes nothing, and resolving leaves one row */
	CHECK_INT_EQ(store_cs_add_ref(s, group, "manager", "cn=bob,dc=corp"), 1);
	CHECK(upsert(s, ad, "b2", "CN=Bob,DC=corp", "user", a, 0, NULL, &bob) == 0);
	CHECK_INT_EQ(store_cs_add_ref(s, group, "manager", "CN=Bob,DC=corp"), 0);
	CHECK(store_cs_set_refs(s, group, "manager", (const char *[]){"CN=BOB,DC=corp"}, 1,
	                        &changes) == 0);
	CHECK_INT_EQ(changes, 0);
	CHECK(store_cs_resolve_refs(s, ad, &n) == 0);
	CHECK(n >= 1);
	c.n = 0;
	CHECK(store_cs_get_refs(s, group, "manager", collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 1);
	CHECK_INT_EQ(c.target[0], bob);
	CHECK_STR_EQ(c.dn[0], "CN=Bob,DC=corp");
	CHECK_INT_EQ(store_cs_remove_ref(s, group, "manager", "cn=BOB,dc=corp"), 1);
	c.n = 0;
	CHECK(store_cs_get_refs(s, group, "manager", collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 0);

	/* a 50,000-member group: one change touches one row */
	for (int i = 0; i < 50000; i++) {
		snprintf(big_text[i], sizeof(big_text[0]), "CN=user%05d,OU=Staff,DC=corp", i);
		big[i] = big_text[i];
	}
	CHECK(store_begin(s) == 0);
	CHECK(store_cs_set_refs(s, group, "member", big, 50000, &changes) == 0);
	CHECK(store_commit(s) == 0);
	CHECK_INT_EQ(changes, 50000 + 3);
	snprintf(big_text[50000], sizeof(big_text[0]), "CN=newcomer,OU=Staff,DC=corp");
	big[50000] = big_text[50000];
	CHECK(store_cs_set_refs(s, group, "member", big, 50001, &changes) == 0);
	CHECK_INT_EQ(changes, 1);
	CHECK(store_cs_get_refs(s, group, "member", count_ref, &counted) == 0);
	CHECK_INT_EQ(counted, 50001); /* streamed in batches */

	CHECK(store_cs_delete(s, group) == 0);
	c.n = 0;
	CHECK(store_cs_get_referrers(s, alice, collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 0);

	attr_set_free(a);
	store_close(s);
}

/* Attributes encoded by the caller (in another thread) are stored as if the store had encoded
 * them: the same object, digest and change detection. */
static void test_preencoded(void)
{
	struct store *s = open_rw("pre.db");
	struct attr_set *a = attr_set_new();
	struct store_cs_object *o1 = NULL, *o2 = NULL;
	enum store_upsert_result res;
	uint8_t digest[ATTR_DIGEST_SIZE];
	void *blob = NULL;
	size_t len = 0;
	int64_t ad, id1, id2;

	store_get_connector(s, "ad", &ad);
	attr_set_add_string(a, "cn", "x");
	attr_set_add_string(a, "title", "Engineer");
	CHECK(attr_set_serialize(a, &blob, &len) == 0);
	CHECK(attr_set_digest(a, digest) == 0);
	struct store_cs_import in = {.anchor = "p1",
	                             .anchor_len = 2,
	                             .dn = "CN=P1,DC=corp",
	                             .object_class = "user",
	                             .attrs_blob = blob,
	                             .attrs_blob_len = len,
	                             .attrs_digest = digest};
	CHECK(store_cs_upsert(s, ad, &in, &res, &id1) == 0);
	CHECK_INT_EQ(res, STORE_ADDED);
	CHECK(upsert(s, ad, "p2", "CN=P2,DC=corp", "user", a, 0, NULL, &id2) == 0);
	CHECK(store_cs_get(s, id1, &o1) == 0);
	CHECK(store_cs_get(s, id2, &o2) == 0);
	CHECK(memcmp(o1->digest, o2->digest, ATTR_DIGEST_SIZE) == 0);
	CHECK(attr_set_equal(o1->attrs, o2->attrs));
	/* the same attributes again, encoded: unchanged; through the set: unchanged */
	CHECK(store_cs_upsert(s, ad, &in, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_UNCHANGED);
	CHECK(upsert(s, ad, "p1", "CN=P1,DC=corp", "user", a, 0, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_UNCHANGED);
	/* a blob without its digest (or the reverse) is refused */
	in.attrs_digest = NULL;
	CHECK_INT_EQ(store_cs_upsert(s, ad, &in, &res, NULL), -EINVAL);
	store_cs_object_free(o1);
	store_cs_object_free(o2);
	free(blob);
	attr_set_free(a);
	store_close(s);
}

/* A store written by schema version 1 (references with their DN text, resolved or not) is
 * migrated on open: resolved rows keep their target, unresolved ones their DN. */
static void test_migrate_refs(void)
{
	struct store *s = open_rw("mig.db");
	struct attr_set *a = attr_set_new();
	struct refs c = {0};
	const char *members[] = {"CN=Alice,DC=corp", "CN=Gone,DC=corp"};
	int64_t ad, group, alice;
	size_t changes;
	sqlite3 *db;
	uint32_t v = 0;

	store_get_connector(s, "ad", &ad);
	attr_set_add_string(a, "cn", "x");
	CHECK(upsert(s, ad, "g", "CN=Group,DC=corp", "group", a, 0, NULL, &group) == 0);
	CHECK(upsert(s, ad, "a", "CN=Alice,DC=corp", "user", a, 0, NULL, &alice) == 0);
	CHECK(store_cs_set_refs(s, group, "member", members, 2, &changes) == 0);
	s = store_close(s);

	/* back to version 1's layout, as that version wrote it */
	CHECK(sqlite3_open(path_in("mig.db"), &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
	                   "BEGIN;"
	                   "CREATE TABLE v1 (cs_id INTEGER NOT NULL REFERENCES cs_objects(id)"
	                   " ON DELETE CASCADE, attr TEXT NOT NULL COLLATE NOCASE,"
	                   " target_dn TEXT NOT NULL COLLATE NOCASE, connector_id INTEGER NOT NULL,"
	                   " target_cs_id INTEGER REFERENCES cs_objects(id) ON DELETE SET NULL,"
	                   " PRIMARY KEY (cs_id, attr, target_dn)) WITHOUT ROWID;"
	                   "INSERT INTO v1 SELECT r.cs_id, r.attr,"
	                   " CASE r.target_cs_id WHEN 0 THEN r.target_dn ELSE t.dn END,"
	                   " r.connector_id, nullif(r.target_cs_id, 0)"
	                   " FROM cs_refs r LEFT JOIN cs_objects t ON t.id = r.target_cs_id;"
	                   "DROP TRIGGER cs_refs_unresolve; DROP TABLE cs_refs;"
	                   "ALTER TABLE v1 RENAME TO cs_refs;"
	                   "CREATE INDEX cs_refs_target ON cs_refs(target_cs_id)"
	                   " WHERE target_cs_id IS NOT NULL;"
	                   "CREATE INDEX cs_refs_unresolved ON cs_refs(connector_id, target_dn)"
	                   " WHERE target_cs_id IS NULL;"
	                   "PRAGMA user_version = 1; COMMIT;",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	header_u32(path_in("mig.db"), 60, &v, NULL);
	CHECK_INT_EQ(v, 1);

	s = open_rw("mig.db");
	CHECK(store_cs_get_refs(s, group, "member", collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 2);
	CHECK_STR_EQ(c.dn[0], "CN=Alice,DC=corp");
	CHECK_INT_EQ(c.target[0], alice);
	CHECK_STR_EQ(c.dn[1], "CN=Gone,DC=corp");
	CHECK_INT_EQ(c.target[1], 0);
	/* and behaves as written by this version: a deleted target turns back into its DN */
	CHECK(store_cs_delete(s, alice) == 0);
	c.n = 0;
	CHECK(store_cs_get_refs(s, group, "member", collect_ref, &c) == 0);
	CHECK_INT_EQ(c.n, 2);
	CHECK_STR_EQ(c.dn[0], "CN=Alice,DC=corp");
	CHECK_INT_EQ(c.target[0], 0);
	CHECK(store_check_integrity(s, true) == 0);
	attr_set_free(a);
	store_close(s);
	header_u32(path_in("mig.db"), 60, &v, NULL); /* written back by the close */
	CHECK_INT_EQ(v, store_schema_version());

	/* a migration that fails says why: a version 2 store that claims version 1 */
	{
		char err[512] = "";
		struct store *t = NULL;
		CHECK(sqlite3_open(path_in("mig.db"), &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
		CHECK(store_open(path_in("mig.db"), 0, &t, err, sizeof(err)) < 0);
		CHECK(t == NULL);
		const char *cause = strstr(err, "failed: ");
		CHECK(strncmp(err, "migration to schema version 2", 29) == 0);
		/* SQLite's reason, not the start of this message again */
		CHECK(cause && cause[8] && strncmp(cause + 8, "migration", 9) != 0);
		CHECK(strstr(err, "cs_refs") != NULL);
	}
}

/* --- bulk loading of an empty connector space ---------------------------------------------- */

/* How many of the two indexes of cs_refs a bulk load drops are there. */
#define REFS_INDEXES_SQL                                                                           \
	"SELECT count(*) FROM sqlite_schema WHERE type = 'index'"                                  \
	" AND name IN ('cs_refs_target', 'cs_refs_unresolved')"

/* A pragma's value on the store's connection (or any query's first value). */
static int64_t pragma_int(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v;

	CHECK(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* One first full import, with or without the bulk path; the ids of the objects in ret_ids.
 * at_end: how many references the bulk path resolves at its end. */
static void bulk_scenario(struct store *s, int64_t ad, bool bulk, uint64_t at_end,
                          int64_t ret_ids[8])
{
	struct attr_set *a = attr_set_new();
	enum store_upsert_result res;
	size_t changes = 0;
	uint64_t n = 99;
	const char *gm[] = {"CN=Alice,DC=corp", "cn=CAROL,dc=corp", "cn=alice,dc=corp",
	                    "CN=Nobody,DC=corp"};
	const char *gm2[] = {"CN=Alice,DC=corp", "CN=Dave,DC=corp"};
	const char *mgr[] = {"CN=Bob,DC=corp"};
	const char *old_dn[] = {"CN=Eve,DC=corp", "CN=Rolled,DC=corp", "CN=Eve2,DC=corp"};

	attr_set_add_string(a, "cn", "x");
	CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -65536);
	if (bulk) {
		CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
		CHECK_INT_EQ(store_cs_bulk_begin(s, ad), -EBUSY);
		/* a load runs with a smaller page cache */
		CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -STORE_BULK_CACHE_KIB);
	}
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "a", "CN=Alice,DC=corp", "user", a, 1, &res, &ret_ids[0]) == 0);
	CHECK_INT_EQ(res, STORE_ADDED);
	CHECK(store_cs_set_refs(s, ret_ids[0], "manager", mgr, 1, &changes) == 0); /* later */
	CHECK_INT_EQ(changes, 1);
	CHECK(upsert(s, ad, "g", "CN=G,DC=corp", "group", a, 1, &res, &ret_ids[1]) == 0);
	CHECK(store_cs_set_refs(s, ret_ids[1], "member", gm, 4, &changes) == 0);
	CHECK_INT_EQ(changes, 3); /* alice twice (case) */
	/* a second list for the same attribute merges */
	CHECK(store_cs_set_refs(s, ret_ids[1], "member", gm2, 2, &changes) == 0);
	CHECK_INT_EQ(changes, 3); /* carol, nobody out; dave in; alice stays */
	CHECK(upsert(s, ad, "b", "CN=Bob,DC=corp", "user", a, 1, &res, &ret_ids[2]) == 0);
	CHECK(upsert(s, ad, "c", "CN=Carol,DC=corp", "user", a, 1, &res, &ret_ids[3]) == 0);
	CHECK(store_commit(s) == 0);

	/* a page rolled back: its objects are gone, references to them stay unresolved */
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "r", old_dn[1], "user", a, 1, &res, NULL) == 0);
	CHECK(store_rollback(s) == 0);
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "i", "CN=I,DC=corp", "group", a, 1, &res, &ret_ids[6]) == 0);
	CHECK(store_cs_set_refs(s, ret_ids[6], "member", old_dn + 1, 1, &changes) == 0);
	CHECK(upsert(s, ad, "d", "CN=Dave,DC=corp", "user", a, 1, &res, &ret_ids[7]) == 0);
	CHECK(store_commit(s) == 0);

	/* an object returned twice (moved during the search): the second time it is a change */
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "e", old_dn[0], "user", a, 1, &res, &ret_ids[4]) == 0);
	attr_set_add_string(a, "title", "t");
	CHECK(upsert(s, ad, "e", "CN=Eve,OU=Moved,DC=corp", "user", a, 1, &res, NULL) == 0);
	CHECK_INT_EQ(res, STORE_CHANGED);
	CHECK(upsert(s, ad, "h", "CN=H,DC=corp", "group", a, 1, &res, &ret_ids[5]) == 0);
	CHECK(store_cs_set_refs(s, ret_ids[5], "member", old_dn, 1, &changes) == 0);
	CHECK(store_commit(s) == 0);

	CHECK(store_cs_bulk_end(s, &n) == 0);
	CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -65536); /* the store's again */
	CHECK_INT_EQ(n, bulk ? at_end : 0);                       /* else in resolve_refs */
	CHECK(store_cs_resolve_refs(s, ad, &n) == 0);
	CHECK_INT_EQ(n, bulk ? 0 : 2);
	CHECK_INT_EQ(store_cs_bulk_end(s, NULL), 0); /* not bulk loading: nothing */
	attr_set_free(a);
}

/* A group listing many earlier objects (more than one lookup batch, written in another case):
 * the bulk DN map resolves every member while loading, none is left to the final query. */
struct refs_seen {
	int resolved, unresolved;
	int64_t sum;
};

static int on_ref(const struct store_ref *r, void *userdata)
{
	struct refs_seen *x = userdata;

	if (r->target_cs_id) {
		x->resolved++;
		x->sum += r->target_cs_id;
	} else {
		x->unresolved++;
	}
	return 0;
}

static void test_bulk_many_members(void)
{
	enum { N = 300 };
	struct store *s = open_rw("bulkmany.db");
	static char dns[N + 3][32];
	const char *members[N + 3];
	struct refs_seen seen = {0};
	int64_t ad, id, gid, sum = 0;
	uint64_t n = 99;
	size_t changes = 0;

	store_get_connector(s, "ad", &ad);
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK(store_begin(s) == 0);
	for (int i = 0; i < N; i++) {
		char anchor[16], dn[32];
		snprintf(anchor, sizeof(anchor), "u%d", i);
		snprintf(dn, sizeof(dn), "CN=User %d,DC=corp", i);
		CHECK(upsert(s, ad, anchor, dn, "user", NULL, 1, NULL, &id) == 0);
		sum += id;
		snprintf(dns[i], sizeof(dns[i]), "cn=user %d,dc=CORP", N - 1 - i);
		members[i] = dns[i];
	}
	/* the directory's order, with a member twice under another case: resolved and not */
	snprintf(dns[N], sizeof(dns[N]), "CN=Nobody,DC=corp");
	snprintf(dns[N + 1], sizeof(dns[N + 1]), "cn=NOBODY,dc=corp");
	snprintf(dns[N + 2], sizeof(dns[N + 2]), "CN=USER 7,DC=corp");
	for (int i = N; i < N + 3; i++)
		members[i] = dns[i];
	CHECK(upsert(s, ad, "g", "CN=G,DC=corp", "group", NULL, 1, NULL, &gid) == 0);
	CHECK(store_cs_set_refs(s, gid, "member", members, N + 3, &changes) == 0);
	CHECK_INT_EQ(changes, N + 1);
	CHECK_INT_EQ(s->bulk.unresolved, 1); /* the duplicates were not written (nor ignored) */
	CHECK(store_commit(s) == 0);
	CHECK(store_cs_bulk_end(s, &n) == 0);
	CHECK_INT_EQ(n, 0); /* all resolved while loading */
	CHECK(store_cs_get_refs(s, gid, "member", on_ref, &seen) == 0);
	CHECK_INT_EQ(seen.resolved, N);
	CHECK_INT_EQ(seen.unresolved, 1);
	CHECK_INT_EQ(seen.sum, sum); /* each to its own object */
	store_close(s);
}

/* The bulk DN map itself, with more DNs than one block of entries and one table of slots
 * holds: each is found under any ASCII case, near misses are not, and past its budget the map
 * answers nothing (the references are then resolved by the query at the end). */
static void test_bulk_map(void)
{
	enum { N = 60000, PARENTS = 700 };
	struct store *s = open_rw("bulkmap2.db");
	static char dn[N][64], other[N][64];
	const char *q[N];
	static int64_t ids[N];
	int64_t ad;

	store_get_connector(s, "ad", &ad);
	for (size_t budget = 0; budget < 2; budget++) {
		store_bulk_map_max = budget ? 2u << 20 : STORE_BULK_MAP_MAX; /* past 1 block */
		CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
		for (int i = 0; i < N; i++) {
			/* an escaped comma in some RDNs; a DN with no comma at all */
			snprintf(dn[i], sizeof(dn[i]),
			         i % 7 ? "CN=User %d,OU=Site %d,DC=corp"
			               : "CN=Doe\\, J %d,OU=Site %d,DC=corp",
			         i, i % PARENTS);
			if (i == 5)
				snprintf(dn[i], sizeof(dn[i]), "DC=lonely");
			CHECK_INT_EQ(store_bulk_added(s, dn[i], 1000 + i), 0);
		}
		CHECK_INT_EQ(store_bulk_added(s, "cn=user 1,ou=SITE 1,dc=CORP", 7),
		             0); /* not kept */
		/* "CN=Doe\, J" shares its container's parent */
		CHECK_INT_EQ(s->bulk.n_parents, budget ? 0 : PARENTS);
		for (int i = 0; i < N; i++) { /* the same DNs, the case changed */
			for (size_t k = 0; k < sizeof(other[i]) && (k == 0 || dn[i][k - 1]); k++) {
				char c = dn[i][k];
				other[i][k] =
				    (char)((i + (int)k) % 2 && c >= 'A' && c <= 'Z' ? c + 32 : c);
			}
			q[i] = other[i];
		}
		store_bulk_lookup_many(s, q, N, ids);
		for (int i = 0; i < N; i++)
			CHECK_INT_EQ(ids[i], budget ? 0 : 1000 + i);
		{
			const char *miss[] = {"CN=User,OU=Site 1,DC=corp",     /* an RDN's prefix */
			                      "CN=User 1,OU=Site 2,DC=corp",   /* another parent */
			                      "CN=User 1,OU=Site 1,DC=corp,X", /* a longer parent */
			                      "CN=User 1",                     /* no parent */
			                      "DC=lonely,DC=x",
			                      "DC=lonel",
			                      "CN=Doe\\, J 0,OU=Site 1,DC=corp"};
			int64_t got[7];
			store_bulk_lookup_many(s, miss, 7, got);
			for (int i = 0; i < 7; i++)
				CHECK_INT_EQ(got[i], 0);
		}
		CHECK_INT_EQ(store_cs_bulk_end(s, NULL), 0);
	}
	store_bulk_map_max = STORE_BULK_MAP_MAX;
	store_close(s);
}

/* A load that writes many unresolved rows (members listed before they are imported, or a DN
 * map over its budget) drops their index and resolves them at the end in passes, each with a
 * map of as many objects as its budget holds. The result is the query's: the lowest id of a
 * DN, any case; DNs of no object stay unresolved; both indexes are there at the end. */
static void test_bulk_resolve_in_passes(void)
{
	enum { USERS = 5000, GROUPS = 3 };
	static char dns[USERS][40], upper[USERS][40];
	const char *members[USERS + 2];
	struct store *s = open_rw("bulkpasses.db");
	int64_t ad, gid[GROUPS], uid[USERS], dup;
	unsigned passes;
	uint64_t n = 0;
	size_t changes;

	store_get_connector(s, "ad", &ad);
	store_bulk_unresolved_step = 1000;
	store_bulk_map_max = 1100000; /* one block and 4,096 slots: 3,072 DNs, so 2 passes */
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK(store_begin(s) == 0);
	for (int i = 0; i < USERS; i++) {
		snprintf(dns[i], sizeof(dns[i]), "CN=Member %d,OU=People,DC=corp", i);
		snprintf(upper[i], sizeof(upper[i]), "cn=MEMBER %d,ou=people,dc=CORP", i);
		members[i] = i % 2 ? dns[i] : upper[i];
	}
	members[USERS] = "CN=Nobody,DC=corp";
	members[USERS + 1] = "CN=Twice,DC=corp";
	for (int g = 0; g < GROUPS; g++) { /* listed before any member exists */
		char anchor[16], dn[32];
		snprintf(anchor, sizeof(anchor), "g%d", g);
		snprintf(dn, sizeof(dn), "CN=Group %d,DC=corp", g);
		CHECK(upsert(s, ad, anchor, dn, "group", NULL, 1, NULL, &gid[g]) == 0);
		changes = 0;
		CHECK(store_cs_set_refs(s, gid[g], "member", members, USERS + 2, &changes) == 0);
		CHECK_INT_EQ(changes, USERS + 2);
	}
	CHECK_INT_EQ(pragma_int(s, REFS_INDEXES_SQL), 0); /* both dropped now */
	for (int i = 0; i < USERS; i++) {
		char anchor[16];
		snprintf(anchor, sizeof(anchor), "u%d", i);
		CHECK(upsert(s, ad, anchor, dns[i], "user", NULL, 1, NULL, &uid[i]) == 0);
	}
	/* of two objects with one DN the first not transient wins, as in the query */
	CHECK(upsert(s, ad, "t1", "CN=Twice,DC=corp", "user", NULL, 1, NULL, &dup) == 0);
	CHECK(upsert(s, ad, "t2", "cn=twice,dc=corp", "user", NULL, 1, NULL, NULL) == 0);
	CHECK(upsert(s, ad, "t3", "CN=TWICE,DC=corp", "user", NULL, 1, NULL, NULL) == 0);
	CHECK(store_cs_set_flags(s, dup, STORE_CS_TRANSIENT, 0) == 0);
	CHECK(store_commit(s) == 0);
	passes = store_bulk_passes;
	CHECK_INT_EQ(store_cs_bulk_end(s, &n), 0);
	CHECK_INT_EQ(store_bulk_passes - passes, 2);
	CHECK_INT_EQ(n, GROUPS * (USERS + 1)); /* all but Nobody */
	CHECK_INT_EQ(pragma_int(s, REFS_INDEXES_SQL), 2);
	{
		char sql[256];
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM cs_refs r JOIN cs_objects c ON c.id = r.target_cs_id"
		         " WHERE r.target_dn = '' AND r.cs_id IN (%lld, %lld, %lld)"
		         " AND (c.anchor = CAST('t2' AS BLOB) OR c.dn LIKE 'CN=Member %%')",
		         (long long)gid[0], (long long)gid[1], (long long)gid[2]);
		CHECK_INT_EQ(pragma_int(s, sql), GROUPS * (USERS + 1));
		CHECK_INT_EQ(pragma_int(s, "SELECT count(*) FROM cs_refs WHERE target_cs_id = 0"
		                           " AND target_dn = 'CN=Nobody,DC=corp'"),
		             GROUPS);
	}
	/* each member once in each group, in both passes' halves */
	for (int i = 0; i < USERS; i += USERS / 10 - 1) {
		struct refs_seen seen = {0};
		CHECK(store_cs_get_referrers(s, uid[i], on_ref, &seen) == 0);
		CHECK_INT_EQ(seen.resolved, GROUPS);
		CHECK_INT_EQ(seen.unresolved, 0);
		CHECK_INT_EQ(seen.sum, GROUPS * uid[i]);
	}
	CHECK(store_check_integrity(s, true) == 0);
	store_bulk_unresolved_step = STORE_BULK_UNRESOLVED_STEP;
	store_bulk_map_max = STORE_BULK_MAP_MAX;
	store_close(s);
}

/* A load's page cache starts small and grows with the objects it adds, up to the store's. */
static void test_bulk_cache_grows(void)
{
	struct store *s = open_rw("bulkcache.db");
	int64_t ad;

	store_get_connector(s, "ad", &ad);
	store_bulk_cache_kib = 1536;
	CHECK(store_exec(s, "PRAGMA cache_size = -2560") == 0); /* the store's, for this test */
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -1536);
	CHECK(store_begin(s) == 0);
	for (int i = 1; i <= 3 * STORE_BULK_CACHE_STEP; i++) {
		char anchor[16], dn[32];
		snprintf(anchor, sizeof(anchor), "u%d", i);
		snprintf(dn, sizeof(dn), "CN=User %d,DC=corp", i);
		CHECK(upsert(s, ad, anchor, dn, "user", NULL, 1, NULL, NULL) == 0);
		if (i == STORE_BULK_CACHE_STEP) /* 1 MiB of the allowance: the floor still */
			CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -1536);
		if (i == 2 * STORE_BULK_CACHE_STEP)
			CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"),
			             -2 * STORE_BULK_CACHE_STEP * STORE_BULK_CACHE_PER_OBJECT /
			                 1024);
	}
	CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -2560); /* never above the store's */
	CHECK(store_commit(s) == 0);
	CHECK_INT_EQ(store_cs_bulk_end(s, NULL), 0);
	CHECK_INT_EQ(pragma_int(s, "PRAGMA cache_size"), -2560);
	store_bulk_cache_kib = STORE_BULK_CACHE_KIB;
	store_close(s);
}

/* A bulk load's checkpoints run on a thread of their own, and the WAL stays bounded: once it
 * holds store_ckpt_wal_max bytes, the next transaction waits for the checkpoint under way and
 * starts the WAL over. Ten transactions of about 1.2 MiB each against a 1 MiB bound. */
static void test_bulk_checkpointer(void)
{
	struct store *s = open_rw("bulkckpt.db");
	struct attr_set *a = attr_set_new();
	char big[2048], wal[4096];
	unsigned runs = __atomic_load_n(&store_ckpt_runs, __ATOMIC_RELAXED);
	off_t wal_max = 0;
	struct stat st;
	int64_t ad;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	snprintf(wal, sizeof(wal), "%s-wal", path_in("bulkckpt.db"));
	store_get_connector(s, "ad", &ad);
	store_ckpt_wal_max = 1u << 20;
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK(s->ckpt != NULL);
	for (int t = 0; t < 10; t++) {
		CHECK(store_begin(s) == 0);
		for (int i = 0; i < 600; i++) {
			char anchor[16], dn[32];
			snprintf(anchor, sizeof(anchor), "u%d.%d", t, i);
			snprintf(dn, sizeof(dn), "CN=User %d.%d,DC=corp", t, i);
			attr_set_free(a);
			a = attr_set_new();
			attr_set_add_string(a, "cn", anchor);
			attr_set_add_string(a, "description", big);
			CHECK(upsert(s, ad, anchor, dn, "user", a, 1, NULL, NULL) == 0);
		}
		CHECK(store_commit(s) == 0);
		if (stat(wal, &st) == 0 && st.st_size > wal_max)
			wal_max = st.st_size;
	}
	/* the thread checkpointed (the last commit's may still run: the first nine are done) */
	CHECK(__atomic_load_n(&store_ckpt_runs, __ATOMIC_RELAXED) > runs);
	/* 12 MiB written: without a rewind the WAL would hold all of it */
	CHECK(wal_max > 0 && wal_max < (off_t)4 << 20);
	CHECK_INT_EQ(store_cs_bulk_end(s, NULL), 0);
	CHECK(s->ckpt == NULL);
	/* SQLite's own checkpoints are back */
	CHECK_INT_EQ(pragma_int(s, "PRAGMA wal_autocheckpoint"), 1000);
	CHECK(store_check_integrity(s, true) == 0);
	CHECK_INT_EQ(pragma_int(s, "SELECT count(*) FROM cs_objects"), 6000);
	store_close(s);

	/* a store closed in the middle of a load: the thread ends with it (the sanitizers and
	 * valgrind see the join and the frees), and the next open has everything committed */
	s = open_rw("bulkckpt2.db");
	store_get_connector(s, "ad", &ad);
	CHECK(store_exec(s, "PRAGMA wal_autocheckpoint = 500") == 0);
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK(s->ckpt != NULL);
	for (int t = 0; t < 3; t++) {
		CHECK(store_begin(s) == 0);
		for (int i = 0; i < 600; i++) {
			char anchor[16];
			snprintf(anchor, sizeof(anchor), "v%d.%d", t, i);
			CHECK(upsert(s, ad, anchor, NULL, "user", a, 1, NULL, NULL) == 0);
		}
		CHECK(store_commit(s) == 0);
	}
	store_close(s);
	s = open_rw("bulkckpt2.db");
	CHECK(store_check_integrity(s, true) == 0);
	CHECK_INT_EQ(pragma_int(s, "SELECT count(*) FROM cs_objects"), 1800);
	CHECK_INT_EQ(pragma_int(s, REFS_INDEXES_SQL), 2); /* the dropped index is back */
	store_close(s);

	/* a load that ends with the setting the store had, whatever it was */
	s = open_rw("bulkckpt3.db");
	store_get_connector(s, "ad", &ad);
	CHECK(store_exec(s, "PRAGMA wal_autocheckpoint = 500") == 0);
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK_INT_EQ(store_cs_bulk_end(s, NULL), 0);
	CHECK_INT_EQ(pragma_int(s, "PRAGMA wal_autocheckpoint"), 500);
	store_close(s);
	store_ckpt_wal_max = STORE_CKPT_WAL_MAX;
	attr_set_free(a);
}

/* A VFS that can refuse temporary files (as when no directory for them can be written): the
 * rebuild of the reference index after a bulk load then sorts in memory. */
static sqlite3_vfs notemp_vfs, *base_vfs;
static bool refuse_temp;
static int temp_refused;

static int notemp_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	(void)vfs;
	if (refuse_temp && (flags & (SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_TEMP_DB))) {
		temp_refused++;
		return SQLITE_CANTOPEN;
	}
	return base_vfs->xOpen(base_vfs, name, f, flags, out);
}

static void test_bulk_rebuild_without_temp_files(void)
{
	/* 280,000 references: SQLite's sorter writes its runs of 250 pages (4 MiB here) to
	 * temporary files only beyond that */
	enum { USERS = 2000, GROUPS = 140 };
	static char dns[USERS][32];
	const char *members[USERS];
	struct refs_seen seen = {0};
	struct store *s;
	int64_t ad, id, first = 0;
	uint64_t n = 99;
	size_t changes;

	base_vfs = sqlite3_vfs_find(NULL);
	notemp_vfs = *base_vfs;
	notemp_vfs.zName = "hs-notemp";
	notemp_vfs.xOpen = notemp_open;
	notemp_vfs.pNext = NULL;
	CHECK_INT_EQ(sqlite3_vfs_register(&notemp_vfs, 1), SQLITE_OK);
	s = open_rw("bulknotemp.db");
	refuse_temp = true;
	store_get_connector(s, "ad", &ad);
	CHECK_INT_EQ(store_cs_bulk_begin(s, ad), 1);
	CHECK(store_begin(s) == 0);
	for (int i = 0; i < USERS; i++) {
		char anchor[16];
		snprintf(anchor, sizeof(anchor), "u%d", i);
		snprintf(dns[i], sizeof(dns[i]), "CN=User %d,DC=corp", i);
		members[i] = dns[i];
		CHECK(upsert(s, ad, anchor, dns[i], "user", NULL, 1, NULL, &id) == 0);
		if (i == 0)
			first = id;
	}
	for (int g = 0; g < GROUPS; g++) {
		char anchor[16], dn[32];
		snprintf(anchor, sizeof(anchor), "g%d", g);
		snprintf(dn, sizeof(dn), "CN=G%d,DC=corp", g);
		CHECK(upsert(s, ad, anchor, dn, "group", NULL, 1, NULL, &id) == 0);
		changes = 0;
		CHECK(store_cs_set_refs(s, id, "member", members, USERS, &changes) == 0);
		CHECK_INT_EQ(changes, USERS);
	}
	CHECK(store_commit(s) == 0);
	CHECK_INT_EQ(store_cs_bulk_end(s, &n), 0);
	CHECK(temp_refused > 0); /* the sort did want a file */
	refuse_temp = false;
	CHECK_INT_EQ(n, 0);
	/* the index is there and answers: every group lists the first user */
	CHECK(store_cs_get_referrers(s, first, on_ref, &seen) == 0);
	CHECK_INT_EQ(seen.resolved + seen.unresolved, GROUPS);
	CHECK_INT_EQ(pragma_int(s, REFS_INDEXES_SQL), 2);
	store_close(s);
	CHECK_INT_EQ(sqlite3_vfs_register(base_vfs, 1), SQLITE_OK);
	CHECK_INT_EQ(sqlite3_vfs_unregister(&notemp_vfs), SQLITE_OK);
}

static void test_bulk(void)
{
	struct store *s[3] = {open_rw("bulk.db"), open_rw("nobulk.db"), open_rw("bulkmap.db")};
	int64_t ad[3], graph, ids[3][8];
	struct store_cs_object *o = NULL;

	for (int k = 0; k < 3; k++)
		store_get_connector(s[k], "ad", &ad[k]);
	/* not empty: no bulk load (other connectors do not count) */
	for (int k = 0; k < 3; k++) {
		store_get_connector(s[k], "graph", &graph);
		CHECK(upsert(s[k], graph, "x", "CN=X", "user", NULL, 0, NULL, NULL) == 0);
		CHECK_INT_EQ(store_cs_bulk_begin(s[k], graph), 0);
	}
	CHECK_INT_EQ(store_cs_bulk_begin(s[1], 0), -EINVAL);

	bulk_scenario(s[0], ad[0], true, 2, ids[0]); /* bob and dave, imported after */
	bulk_scenario(s[1], ad[1], false, 0, ids[1]);
	/* a DN map over its memory budget is dropped: every reference is resolved at the end */
	store_bulk_map_max = 1;
	bulk_scenario(s[2], ad[2], true, 3, ids[2]);
	store_bulk_map_max = STORE_BULK_MAP_MAX;
	/* the same store either way */
	for (int i = 0; i < 8; i++) {
		struct refs r[3] = {0}, rr[3] = {0};
		for (int k = 0; k < 3; k++) {
			CHECK(store_cs_get(s[k], ids[k][i], &o) == 0);
			CHECK_INT_EQ(o->pending_import, STORE_PENDING_ADD);
			o = store_cs_object_free(o);
			CHECK(store_cs_get_refs(s[k], ids[k][i], NULL, collect_ref, &r[k]) == 0);
			CHECK(store_cs_get_referrers(s[k], ids[k][i], collect_ref, &rr[k]) == 0);
		}
		for (int k = 0; k < 3; k += 2) { /* both bulk loads against the general path */
			CHECK_INT_EQ(ids[k][i], ids[1][i]);
			CHECK_INT_EQ(r[k].n, r[1].n);
			CHECK_INT_EQ(rr[k].n, rr[1].n);
			for (int j = 0; j < r[k].n && j < 8; j++) {
				CHECK_STR_EQ(r[k].dn[j], r[1].dn[j]);
				CHECK_INT_EQ(r[k].target[j], r[1].target[j]);
			}
			for (int j = 0; j < rr[k].n && j < 8; j++)
				CHECK_INT_EQ(rr[k].cs_id[j], rr[1].cs_id[j]);
		}
	}
	{
		struct refs r = {0};
		CHECK(store_cs_get_refs(s[0], ids[0][1], "member", collect_ref, &r) == 0);
		CHECK_INT_EQ(r.n, 2);
		CHECK_INT_EQ(r.target[0], ids[0][0]); /* alice */
		CHECK_INT_EQ(r.target[1], ids[0][7]); /* dave, imported after the group */
		r.n = 0;
		CHECK(store_cs_get_refs(s[0], ids[0][5], "member", collect_ref, &r) == 0);
		CHECK_INT_EQ(r.target[0], 0); /* eve moved away from that DN */
		r.n = 0;
		CHECK(store_cs_get_refs(s[0], ids[0][6], "member", collect_ref, &r) == 0);
		CHECK_INT_EQ(r.target[0], 0); /* rolled back */
		r.n = 0;
		CHECK(store_cs_get_referrers(s[0], ids[0][2], collect_ref, &r) == 0);
		CHECK_INT_EQ(r.n, 1); /* bob is alice's manager */
		CHECK_INT_EQ(r.cs_id[0], ids[0][0]);
	}
	/* the second full import finds the space filled: no bulk load */
	CHECK_INT_EQ(store_cs_bulk_begin(s[0], ad[0]), 0);
	CHECK(store_check_integrity(s[0], true) == 0);
	/* the load ran without foreign-key checks; they are back: deleting alice unresolves the
	 * group's reference to her (ON DELETE SET NULL) and drops her own (CASCADE) */
	{
		struct refs r = {0};
		CHECK(store_cs_delete(s[0], ids[0][0]) == 0);
		CHECK(store_cs_get_refs(s[0], ids[0][1], "member", collect_ref, &r) == 0);
		CHECK_INT_EQ(r.n, 2);
		CHECK_INT_EQ(r.target[0], 0);
		CHECK_INT_EQ(r.target[1], ids[0][7]);
		r.n = 0;
		CHECK(store_cs_get_referrers(s[0], ids[0][2], collect_ref, &r) == 0);
		CHECK_INT_EQ(r.n, 0);
		CHECK(store_check_integrity(s[0], true) == 0);
	}
	store_close(s[0]);
	store_close(s[1]);
	store_close(s[2]);

	/* a crash in the middle of a bulk load: the next open puts the dropped index back */
	s[0] = open_rw("bulkcrash.db");
	store_get_connector(s[0], "ad", &ad[0]);
	CHECK_INT_EQ(store_cs_bulk_begin(s[0], ad[0]), 1);
	CHECK_INT_EQ(pragma_int(s[0], REFS_INDEXES_SQL), 1); /* cs_refs_target dropped */
	CHECK(upsert(s[0], ad[0], "a", "CN=A", "user", NULL, 1, NULL, &ids[0][0]) == 0);
	store_close(s[0]);
	s[0] = open_rw("bulkcrash.db");
	CHECK_INT_EQ(pragma_int(s[0], REFS_INDEXES_SQL), 2);
	CHECK(store_check_integrity(s[0], true) == 0);
	CHECK(store_cs_delete(s[0], ids[0][0]) == 0);
	store_close(s[0]);

	/* a delete during the load (no foreign keys): the object's own references go with it,
	 * not to the next object, which gets its id */
	{
		const char *gm[] = {"CN=A", "CN=Nobody"}, *hm[] = {"CN=Other"};
		struct refs r = {0};
		int64_t a, g, h;
		s[0] = open_rw("bulkdel.db");
		store_get_connector(s[0], "ad", &ad[0]);
		CHECK_INT_EQ(store_cs_bulk_begin(s[0], ad[0]), 1);
		CHECK(store_begin(s[0]) == 0);
		CHECK(upsert(s[0], ad[0], "a", "CN=A", "user", NULL, 1, NULL, &a) == 0);
		CHECK(upsert(s[0], ad[0], "g", "CN=G", "group", NULL, 1, NULL, &g) == 0);
		CHECK(store_cs_set_refs(s[0], g, "member", gm, 2, NULL) == 0);
		CHECK(store_commit(s[0]) == 0);
		CHECK(store_cs_delete(s[0], g) == 0);
		CHECK(store_begin(s[0]) == 0);
		CHECK(upsert(s[0], ad[0], "h", "CN=H", "group", NULL, 1, NULL, &h) == 0);
		CHECK(store_cs_set_refs(s[0], h, "member", hm, 1, NULL) == 0);
		CHECK(store_commit(s[0]) == 0);
		CHECK(store_cs_bulk_end(s[0], NULL) == 0);
		CHECK_INT_EQ(h, g); /* the id came back */
		CHECK(store_cs_get_refs(s[0], h, NULL, collect_ref, &r) == 0);
		CHECK_INT_EQ(r.n, 1);
		CHECK_STR_EQ(r.dn[0], "CN=Other");
		r.n = 0;
		CHECK(store_cs_get_referrers(s[0], a, collect_ref, &r) == 0);
		CHECK_INT_EQ(r.n, 0);
		CHECK(store_check_integrity(s[0], true) == 0);

		/* a load that ends inside a transaction: foreign keys are back once it ends */
		CHECK(store_cs_delete(s[0], h) == 0);
		CHECK(store_cs_delete(s[0], a) == 0);
		CHECK_INT_EQ(store_cs_bulk_begin(s[0], ad[0]), 1);
		CHECK(upsert(s[0], ad[0], "a", "CN=A", "user", NULL, 1, NULL, &a) == 0);
		CHECK(store_begin(s[0]) == 0);
		CHECK(store_cs_bulk_end(s[0], NULL) == 0);
		CHECK(store_commit(s[0]) == 0);
		CHECK(store_exec(s[0], "PRAGMA foreign_key_check") == 0);
		CHECK_INT_EQ(pragma_int(s[0], "PRAGMA foreign_keys"), 1);
		store_close(s[0]);
	}
}

static int count_member(const struct store_export_member *m, void *userdata)
{
	CHECK(m->member != NULL);
	(*(int *)userdata)++;
	return 0;
}

static void test_export_memory(void)
{
	struct store *s = open_rw("memory.db");
	struct attr_diff *d = attr_diff_new(), *got = NULL;
	struct attr_value nv = {"Johnny", 6}, ov = {"John", 4};
	int64_t graph, id, exported = 0;
	int members = 0;

	store_get_connector(s, "graph", &graph);
	CHECK(upsert(s, graph, "0000-id", "CN={abc}", "user", NULL, 0, NULL, &id) == 0);
	CHECK_INT_EQ(store_cs_get_export_memory(s, id, &got, NULL), -ENOENT);
	attr_diff_put(d, "displayName", &ov, 1, &nv, 1);
	CHECK(store_cs_set_export_memory(s, id, d, 7) == 0);
	CHECK(store_cs_get_export_memory(s, id, &got, &exported) == 0);
	CHECK(attr_diff_equal(d, got));
	CHECK(exported > 0);
	got = attr_diff_free(got);
	CHECK(store_cs_set_export_member(s, id, "member-1", STORE_MEMBER_ADD) == 0);
	CHECK(store_cs_set_export_member(s, id, "member-2", STORE_MEMBER_REMOVE) == 0);
	CHECK(store_cs_set_export_member(s, id, "member-2", STORE_MEMBER_ADD) == 0);
	CHECK(store_cs_list_export_members(s, id, count_member, &members) == 0);
	CHECK_INT_EQ(members, 2);
	CHECK_INT_EQ(store_cs_confirm_export_member(s, id, "member-1"), 1);
	CHECK_INT_EQ(store_cs_confirm_export_member(s, id, "member-1"), 0);
	CHECK(store_cs_set_export_memory(s, id, NULL, 0) == 0);
	CHECK_INT_EQ(store_cs_get_export_memory(s, id, &got, NULL), -ENOENT);
	CHECK(store_cs_set_export_memory(s, id, d, 7) == 0);
	CHECK(store_cs_clear_export_memory(s, id) == 0);
	members = 0;
	CHECK(store_cs_list_export_members(s, id, count_member, &members) == 0);
	CHECK_INT_EQ(members, 0);
	CHECK_INT_EQ(store_cs_set_export_memory(s, 4242, d, 0), -ENOENT); /* no such object */
	attr_diff_free(d);
	store_close(s);
}

/* --- metaverse ----------------------------------------------------------------------------- */

static int count_mv(const struct store_mv_object *o, void *userdata)
{
	(void)o;
	(*(int *)userdata)++;
	return 0;
}

static void test_mv(void)
{
	struct store *s = open_rw("mv.db");
	struct attr_set *a = person("John", "John.Doe@Corp.Example.com", NULL);
	struct store_mv_object *o = NULL;
	struct store_cs_object *cs = NULL;
	int64_t id, id2, ids[4], ad, csid;
	size_t n;
	int count = 0;
	static const uint8_t sid[] = {1, 2, 0, 3};
	struct store_mv_index_attr idx[] = {{"employeeID", false}, {"MAIL", true}};

	attr_set_add_string(a, "sourceAnchor", "AbCd==");
	attr_set_add(a, "objectSid", sid, sizeof(sid));
	CHECK(store_mv_create(s, "person", "AbCd==", a, &id) == 0);
	CHECK_INT_EQ(store_mv_create(s, "person", "AbCd==", a, &id2), -EEXIST);
	CHECK(store_mv_create(s, "person", NULL, NULL, &id2) == 0);
	CHECK(store_mv_create(s, "group", NULL, NULL, NULL) == 0);

	CHECK(store_mv_find_by_index(s, "userprincipalname", "john.doe@corp.example.COM", 25, ids,
	                             4, &n) == 0);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(ids[0], id);
	CHECK(store_mv_find_by_index(s, "sourceAnchor", "abcd==", 6, ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 0); /* case-sensitive */
	CHECK(store_mv_find_by_index(s, "sourceAnchor", "AbCd==", 6, ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 1);
	CHECK(store_mv_find_by_index(s, "objectSid", sid, sizeof(sid), ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(store_mv_find_by_index(s, "title", "x", 1, ids, 4, &n), -EINVAL);

	/* ambiguity is visible */
	CHECK(store_mv_update(s, id2, a) == 1);
	CHECK(store_mv_update(s, id2, a) == 0); /* same digest */
	CHECK(store_mv_find_by_index(s, "userPrincipalName", "john.doe@corp.example.com", 25, ids,
	                             1, &n) == 0);
	CHECK_INT_EQ(n, 2);
	attr_set_set_string(a, "userPrincipalName", "other@corp.example.com");
	CHECK(store_mv_update(s, id2, a) == 1);
	CHECK(store_mv_find_by_index(s, "userPrincipalName", "john.doe@corp.example.com", 25, ids,
	                             4, &n) == 0);
	CHECK_INT_EQ(n, 1);

	CHECK(store_mv_get_by_source_anchor(s, "AbCd==", &o) == 0);
	CHECK_INT_EQ(o->id, id);
	CHECK_STR_EQ(o->object_type, "person");
	o = store_mv_object_free(o);
	CHECK(store_mv_set_source_anchor(s, id2, "EfGh==") == 0);
	CHECK_INT_EQ(store_mv_set_source_anchor(s, id2, "AbCd=="), -EEXIST);
	CHECK(store_mv_iterate(s, "person", count_mv, &count) == 0);
	CHECK_INT_EQ(count, 2);
	count = 0;
	CHECK(store_mv_iterate(s, NULL, count_mv, &count) == 0);
	CHECK_INT_EQ(count, 3);

	/* another index set: rebuilt from the objects */
	attr_set_set_string(a, "mail", "Jane@Example.com");
	attr_set_set_string(a, "employeeID", "42");
	CHECK(store_mv_update(s, id, a) == 1);
	CHECK(store_mv_set_index_attrs(s, idx, 2) == 0);
	CHECK(store_mv_find_by_index(s, "mail", "jane@example.com", 16, ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 1);
	CHECK(store_mv_find_by_index(s, "employeeid", "42", 2, ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 1);
	CHECK_INT_EQ(store_mv_find_by_index(s, "userPrincipalName", "x", 1, ids, 4, &n), -EINVAL);
	s = store_close(s);
	s = open_rw("mv.db"); /* persisted */
	CHECK(store_mv_find_by_index(s, "MAIL", "JANE@example.com", 16, ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 1);

	/* join and delete: the CS object is disjoined */
	store_get_connector(s, "ad", &ad);
	CHECK(upsert(s, ad, "guid", "CN=John,DC=corp", "user", a, 0, NULL, &csid) == 0);
	CHECK(store_cs_set_mv(s, csid, id) == 0);
	CHECK(store_cs_get_by_mv(s, ad, id, &cs) == 0);
	CHECK_INT_EQ(cs->id, csid);
	cs = store_cs_object_free(cs);
	CHECK_INT_EQ(store_cs_set_mv(s, csid, 999), -ENOENT); /* FK */
	CHECK(store_mv_delete(s, id) == 0);
	CHECK_INT_EQ(store_mv_delete(s, id), -ENOENT);
	CHECK(store_cs_get(s, csid, &cs) == 0);
	CHECK_INT_EQ(cs->mv_id, 0);
	cs = store_cs_object_free(cs);
	CHECK(store_mv_find_by_index(s, "mail", "jane@example.com", 16, ids, 4, &n) == 0);
	CHECK_INT_EQ(n, 0);

	attr_set_free(a);
	store_close(s);
}

/* --- pending exports ----------------------------------------------------------------------- */

static void fill_exports(struct store *s, bool reversed, const char *title)
{
	int64_t graph;
	int i;

	store_get_connector(s, "graph", &graph);
	for (i = 0; i < 20; i++) {
		int k = reversed ? 19 - i : i;
		char anchor[32], dn[64];
		struct attr_diff *d = attr_diff_new();
		struct attr_value nv = {title, strlen(title)}, ov = {"old", 3};
		struct store_member_change m[2] = {
		    {STORE_MEMBER_ADD, "member-b", NULL},
		    {STORE_MEMBER_REMOVE, "member-a", "id-a"},
		};
		struct store_export_spec e = {
		    .connector_id = graph,
		    .op = k % 3 == 0   ? STORE_EXPORT_ADD
		          : k % 3 == 1 ? STORE_EXPORT_UPDATE
		                       : STORE_EXPORT_DELETE,
		    .object_type = k % 2 ? "user" : "group",
		    .anchor = anchor,
		    .dn = dn,
		    .target_id = k % 3 == 0 ? NULL : "graph-id",
		    .changes = d,
		    .members = k % 2 ? NULL : m,
		    .n_members = k % 2 ? 0 : 2,
		    .rules = reversed ? "Out to AAD - User Join" : "other rule", /* provenance */
		    .run_id = reversed ? 5 : 9,
		    .sync_gen = 1,
		};
		snprintf(anchor, sizeof(anchor), "anchor-%02d", k);
		snprintf(dn, sizeof(dn), "CN={%02d}", k);
		if (reversed) { /* the same members, in another order */
			struct store_member_change t = m[0];
			m[0] = m[1];
			m[1] = t;
		}
		attr_diff_put(d, "title", &ov, 1, &nv, 1);
		CHECK(store_export_upsert(s, &e, NULL, NULL) == 0);
		attr_diff_free(d);
	}
}

static int count_export(const struct store_export *e, void *userdata)
{
	CHECK(e->changes != NULL);
	(*(int *)userdata)++;
	return 0;
}

static int count_member_change(const struct store_member_change *m, void *userdata)
{
	CHECK(m->member_anchor != NULL);
	(*(int *)userdata)++;
	return 0;
}

static void test_exports(void)
{
	struct store *s = open_rw("exports.db"), *t = open_rw("exports2.db");
	char fp1[STORE_FINGERPRINT_LEN + 1], fp2[STORE_FINGERPRINT_LEN + 1],
	    fp3[STORE_FINGERPRINT_LEN + 1], empty[STORE_FINGERPRINT_LEN + 1],
	    dfp1[STORE_FINGERPRINT_LEN + 1], dfp2[STORE_FINGERPRINT_LEN + 1];
	struct store_export_totals tot;
	struct store_export *e = NULL;
	struct store_export_filter f = {0};
	struct attr_diff *d = attr_diff_new();
	struct attr_value v = {"CEO", 3};
	struct attr_change ch;
	enum store_upsert_result res;
	int64_t graph, id, id2;
	uint64_t n;
	int count = 0;

	CHECK(store_pending_fingerprint(s, empty) == 0);
	CHECK_INT_EQ(strlen(empty), STORE_FINGERPRINT_LEN);
	fill_exports(s, false, "Engineer");
	fill_exports(s, false, "Engineer"); /* re-running sync never duplicates */
	fill_exports(t, true, "Engineer");
	CHECK(store_export_counts(s, 0, &tot) == 0);
	CHECK_INT_EQ(tot.total, 20);
	CHECK_INT_EQ(tot.add, 7);
	CHECK_INT_EQ(tot.update, 7);
	CHECK_INT_EQ(tot.delete, 6);
	CHECK_INT_EQ(tot.pending, 20);
	CHECK(store_pending_fingerprint(s, fp1) == 0);
	CHECK(store_pending_fingerprint(t, fp2) == 0);
	CHECK_STR_EQ(fp1, fp2); /* same set, other insertion order and provenance */
	CHECK(strcmp(fp1, empty) != 0);
	CHECK(store_pending_deletes_fingerprint(s, dfp1) == 0);
	CHECK(store_pending_deletes_fingerprint(t, dfp2) == 0);
	CHECK_STR_EQ(dfp1, dfp2);
	CHECK(strcmp(dfp1, fp1) != 0); /* the deletes alone, not the queue */

	/* upsert semantics */
	store_get_connector(s, "graph", &graph);
	CHECK(store_export_get_by_anchor(s, graph, "group", "anchor-00", &e) == 0);
	CHECK_INT_EQ(e->op, STORE_EXPORT_ADD);
	CHECK_INT_EQ(e->n_members, 2);
	CHECK(attr_diff_get(e->changes, "title", &ch) == 0);
	CHECK_STR_EQ(ch.new_values[0].data, "Engineer");
	CHECK_STR_EQ(e->rules, "other rule");
	id = e->id;
	e = store_export_free(e);
	count = 0;
	CHECK(store_export_list_members(s, id, count_member_change, &count) == 0);
	CHECK_INT_EQ(count, 2);

	attr_diff_put(d, "title", NULL, 0, &v, 1);
	{
		struct store_export_spec spec = {
		    .connector_id = graph,
		    .op = STORE_EXPORT_ADD,
		    .object_type = "group",
		    .anchor = "anchor-00",
		    .dn = "CN={00}",
		    .changes = d,
		    .sync_gen = 2,
		};
		CHECK(store_export_set_state(s, id, STORE_EXPORT_IN_FLIGHT, NULL, NULL, "req-1") ==
		      0);
		CHECK(store_export_upsert(s, &spec, &res, &id2) == 0);
		CHECK_INT_EQ(res, STORE_CHANGED);
		CHECK_INT_EQ(id2, id);
		CHECK(store_export_get(s, id, &e) == 0);
		CHECK_INT_EQ(e->state, STORE_EXPORT_IN_FLIGHT); /* kept: the exporter settles it */
		CHECK_INT_EQ(e->attempts, 1);
		CHECK_STR_EQ(e->request_id, "req-1");
		CHECK_INT_EQ(e->n_members, 0);
		e = store_export_free(e);
		count = 0;
		CHECK(store_export_list_members(s, id, count_member_change, &count) == 0);
		CHECK_INT_EQ(count, 0);
		CHECK(store_export_upsert(s, &spec, &res, NULL) == 0);
		CHECK_INT_EQ(res, STORE_UNCHANGED);
		CHECK(store_export_set_state(s, id, STORE_EXPORT_ERROR, "Request_BadRequest",
		                             "Invalid value", "req-2") == 0);
		CHECK(store_export_get(s, id, &e) == 0);
		CHECK_STR_EQ(e->error_code, "Request_BadRequest");
		CHECK_STR_EQ(store_export_state_to_string(e->state), "error");
		e = store_export_free(e);
		CHECK(store_export_counts(s, graph, &tot) == 0);
		CHECK_INT_EQ(tot.error, 1);
		CHECK_INT_EQ(tot.total, 20);
		spec.target_id = "new-id"; /* a change resets an error to pending */
		CHECK(store_export_upsert(s, &spec, &res, NULL) == 0);
		CHECK_INT_EQ(res, STORE_CHANGED);
		CHECK(store_export_get(s, id, &e) == 0);
		CHECK_INT_EQ(e->state, STORE_EXPORT_PENDING);
		CHECK(e->error_code == NULL);
		e = store_export_free(e);
	}
	CHECK(store_pending_fingerprint(s, fp3) == 0);
	CHECK(strcmp(fp1, fp3) != 0); /* a change, a different fingerprint */
	CHECK(store_pending_deletes_fingerprint(s, dfp2) == 0);
	CHECK_STR_EQ(dfp1, dfp2); /* ... but the same pending deletes */

	/* done exports leave the queue and its fingerprint */
	fill_exports(t, true, "Engineer");
	CHECK(store_export_get_by_anchor(t, graph, "user", "anchor-01", &e) == 0);
	CHECK(store_export_set_state(t, e->id, STORE_EXPORT_DONE, NULL, NULL, NULL) == 0);
	e = store_export_free(e);
	CHECK(store_pending_fingerprint(t, fp2) == 0);
	CHECK(strcmp(fp1, fp2) != 0);
	CHECK(store_export_counts(t, 0, &tot) == 0);
	CHECK_INT_EQ(tot.total, 19);
	CHECK_INT_EQ(tot.done, 1);

	/* filters and streaming */
	count = 0;
	CHECK(store_export_list(s, NULL, count_export, &count) == 0);
	CHECK_INT_EQ(count, 20);
	f.op_mask = 1u << STORE_EXPORT_DELETE;
	count = 0;
	CHECK(store_export_list(s, &f, count_export, &count) == 0);
	CHECK_INT_EQ(count, 6);
	f.op_mask = 0;
	f.object_type = "user";
	count = 0;
	CHECK(store_export_list(s, &f, count_export, &count) == 0);
	CHECK_INT_EQ(count, 10);
	f.object_type = NULL;
	f.state_mask = 1u << STORE_EXPORT_PENDING;
	count = 0;
	CHECK(store_export_list(s, &f, count_export, &count) == 0);
	CHECK_INT_EQ(count, 20);

	/* a full sync that produced only anchor-00 again: the rest is stale */
	CHECK(store_export_delete_stale(s, graph, 2, &n) == 0);
	CHECK_INT_EQ(n, 19);
	CHECK(store_export_delete(s, id) == 0);
	CHECK_INT_EQ(store_export_delete(s, id), -ENOENT);
	CHECK(store_pending_fingerprint(s, fp3) == 0);
	CHECK_STR_EQ(fp3, empty);
	CHECK_INT_EQ(store_export_op_from_string("update"), STORE_EXPORT_UPDATE);
	CHECK_INT_EQ(store_export_op_from_string("bogus"), -EINVAL);

	attr_diff_free(d);
	store_close(s);
	store_close(t);
}

/* --- runs, audit, config, lease ------------------------------------------------------------ */

struct runs_seen {
	int runs, steps, errors;
	enum store_step_type last_step;
	int64_t first_id;
	uint64_t error_count;
	char status[64];
};

static int on_run(const struct store_run *r, void *userdata)
{
	struct runs_seen *c = userdata;

	if (c->runs++ == 0) {
		c->first_id = r->id;
		c->error_count = r->error_count;
		snprintf(c->status, sizeof(c->status), "%s", r->status ? r->status : "(running)");
	}
	return 0;
}

static int on_step(const struct store_step *st, void *userdata)
{
	struct runs_seen *c = userdata;

	CHECK(st->connector != NULL);
	c->steps++;
	c->last_step = st->step;
	return 0;
}

static int on_error(const struct store_run_error *e, void *userdata)
{
	struct runs_seen *c = userdata;

	CHECK(e->message != NULL);
	c->errors++;
	return 0;
}

static int on_audit(const struct store_audit_event *e, void *userdata)
{
	CHECK_STR_EQ(e->kind, "staging-changed");
	(*(int *)userdata)++;
	return 0;
}

static void test_runs(void)
{
	struct store *s = open_rw("runs.db");
	struct store_step_counters c = {
	    .adds = 3, .updates = 2, .deletes = 1, .errors = 1, .objects = 100};
	struct runs_seen seen = {0};
	struct store_lease *lease = NULL;
	int64_t run, run2, step;
	uint64_t n;
	char *json = NULL;
	int audits = 0;

	CHECK(store_run_begin(s, STORE_RUN_INITIAL, "hash1", &run) == 0);
	CHECK(store_run_step_begin(s, run, "ad", STORE_STEP_FULL_IMPORT, &step) == 0);
	CHECK(store_run_add_error(s, run, step, "guid", "CN=x", "bad-value", "value too long",
	                          NULL) == 0);
	CHECK(store_run_step_end(s, step, "completed-errors", &c) == 0);
	CHECK(store_run_step_begin(s, run, "graph", STORE_STEP_EXPORT, &step) == 0);
	CHECK(store_run_step_end(s, step, "success", NULL) == 0);
	CHECK(store_run_end(s, run, "completed-sync-errors") == 0);
	CHECK(store_run_begin(s, STORE_RUN_DELTA, "hash1", &run2) == 0);
	CHECK(store_run_step_begin(s, run2, "ad", STORE_STEP_DELTA_IMPORT, &step) == 0);
	/* the delta import fell back to a full one: recorded as what it was */
	CHECK(store_run_step_set_type(s, step, STORE_STEP_FULL_IMPORT) == 0);
	CHECK(store_run_list_steps(s, run2, on_step, &seen) == 0);
	CHECK_INT_EQ(seen.last_step, STORE_STEP_FULL_IMPORT);
	CHECK_INT_EQ(store_run_step_set_type(s, step, STORE_STEP_TYPE_MAX), -EINVAL);
	CHECK(store_run_step_set_type(s, step + 100, STORE_STEP_FULL_IMPORT) < 0);
	memset(&seen, 0, sizeof(seen));

	CHECK(store_run_list(s, 0, on_run, &seen) == 0);
	CHECK_INT_EQ(seen.runs, 2);
	CHECK_INT_EQ(seen.first_id, run2); /* newest first */
	CHECK_STR_EQ(seen.status, "(running)");
	memset(&seen, 0, sizeof(seen));
	CHECK(store_run_list(s, 1, on_run, &seen) == 0);
	CHECK_INT_EQ(seen.runs, 1);
	memset(&seen, 0, sizeof(seen));
	CHECK(store_run_get(s, run, on_run, &seen) == 0);
	CHECK_INT_EQ(seen.error_count, 1);
	CHECK_STR_EQ(seen.status, "completed-sync-errors");
	CHECK(store_run_list_steps(s, run, on_step, &seen) == 0);
	CHECK_INT_EQ(seen.steps, 2);
	CHECK(store_run_list_errors(s, run, 0, on_error, &seen) == 0);
	CHECK_INT_EQ(seen.errors, 1);
	/* by step: 3 errors in run2's step, none of them run's; the limit holds */
	for (int i = 0; i < 3; i++)
		CHECK(store_run_add_error(s, run2, step, NULL, "CN=y", "bad-value", "m", NULL) ==
		      0);
	seen.errors = 0;
	CHECK(store_run_list_step_errors(s, run2, step, 0, on_error, &seen) == 0);
	CHECK_INT_EQ(seen.errors, 3);
	seen.errors = 0;
	CHECK(store_run_list_step_errors(s, run2, step, 2, on_error, &seen) == 0);
	CHECK_INT_EQ(seen.errors, 2);
	seen.errors = 0;
	CHECK(store_run_list_step_errors(s, run, step, 0, on_error, &seen) == 0);
	CHECK_INT_EQ(seen.errors, 0); /* the step is run2's */
	CHECK_INT_EQ(store_run_list_step_errors(s, run2, 0, 0, on_error, &seen), -EINVAL);

	/* a crash left run2 open */
	CHECK(store_run_end_unfinished(s, "stopped-server-down", &n) == 0);
	CHECK_INT_EQ(n, 1);
	memset(&seen, 0, sizeof(seen));
	CHECK(store_run_get(s, run2, on_run, &seen) == 0);
	CHECK_STR_EQ(seen.status, "stopped-server-down");

	/* purge by age */
	CHECK(store_run_purge(s, time(NULL) - 86400, &n) == 0);
	CHECK_INT_EQ(n, 0);
	CHECK(store_run_purge(s, time(NULL) + 10, &n) == 0);
	CHECK_INT_EQ(n, 2);
	memset(&seen, 0, sizeof(seen));
	CHECK(store_run_list(s, 0, on_run, &seen) == 0);
	CHECK_INT_EQ(seen.runs, 0);
	CHECK(store_run_list_errors(s, run, 0, on_error, &seen) == 0);
	CHECK_INT_EQ(seen.errors, 0); /* errors went with their run */
	CHECK(store_run_begin(s, STORE_RUN_DELTA, NULL, &run) == 0);
	CHECK(run > run2); /* ids never come back */

	CHECK(store_audit_add(s, "staging-changed", 0, "staging yes -> no", "abc") == 0);
	CHECK(store_audit_add(s, "staging-changed", -1, NULL, NULL) == 0);
	CHECK(store_audit_list(s, 0, on_audit, &audits) == 0);
	CHECK_INT_EQ(audits, 2);

	CHECK(store_config_snapshot_put(s, "h1", "{\"a\":1}") == 0);
	CHECK(store_config_snapshot_put(s, "h1", "{\"a\":2}") == 0); /* kept as first seen */
	CHECK(store_config_snapshot_get(s, "h1", &json, NULL) == 0);
	CHECK_STR_EQ(json, "{\"a\":1}");
	free(json);
	CHECK_INT_EQ(store_config_snapshot_get(s, "h2", &json, NULL), -ENOENT);

	CHECK_INT_EQ(store_lease_get(s, &lease), -ENOENT);
	CHECK(store_lease_set(s, "sync1", "hash1", 1000, "obj-1") == 0);
	CHECK(store_lease_set(s, "sync2", "hash2", 2000, NULL) == 0);
	CHECK(store_lease_get(s, &lease) == 0);
	CHECK_STR_EQ(lease->holder, "sync2");
	CHECK_INT_EQ(lease->renewed, 2000);
	CHECK(lease->graph_object_id == NULL);
	CHECK(store_lease_free(lease) == NULL);
	store_close(s);
}

/* --- transactions, read-only, backup, corruption ------------------------------------------- */

static void test_transactions(void)
{
	struct store *s = open_rw("tx.db");
	struct store_cs_object *o = NULL;
	int64_t ad;

	store_get_connector(s, "ad", &ad);
	CHECK_INT_EQ(store_commit(s), -EINVAL);
	CHECK_INT_EQ(store_rollback(s), -EINVAL);
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "outer", "CN=outer", "user", NULL, 0, NULL, NULL) == 0);
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "inner", "CN=inner", "user", NULL, 0, NULL, NULL) == 0);
	CHECK(store_rollback(s) == 0);
	CHECK(store_commit(s) == 0);
	CHECK(store_cs_get_by_anchor(s, ad, "outer", 5, &o) == 0);
	o = store_cs_object_free(o);
	CHECK_INT_EQ(store_cs_get_by_anchor(s, ad, "inner", 5, &o), -ENOENT);
	CHECK(store_begin(s) == 0);
	CHECK(upsert(s, ad, "gone", "CN=gone", "user", NULL, 0, NULL, NULL) == 0);
	CHECK(store_rollback(s) == 0);
	CHECK_INT_EQ(store_cs_get_by_anchor(s, ad, "gone", 4, &o), -ENOENT);
	store_close(s);
}

static void test_readonly_and_backup(void)
{
	struct store *w = open_rw("live.db"), *ro = NULL, *copy = NULL;
	struct store_cs_object *o = NULL;
	struct attr_set *a = person("Ann", "ann@corp.example.com", "Lead");
	struct store_stats st1, st2;
	char fp1[STORE_FINGERPRINT_LEN + 1], fp2[STORE_FINGERPRINT_LEN + 1], err[256];
	uint64_t total = 0;
	int64_t ad, graph;
	struct stat sb;

	store_get_connector(w, "ad", &ad);
	store_get_connector(w, "graph", &graph);
	CHECK(upsert(w, ad, "committed", "CN=c", "user", a, 0, NULL, NULL) == 0);
	fill_exports(w, false, "Lead");

	/* the writer holds an open write transaction (WAL) */
	CHECK(store_begin(w) == 0);
	CHECK(upsert(w, ad, "uncommitted", "CN=u", "user", a, 0, NULL, NULL) == 0);
	CHECK(store_open(path_in("live.db"), STORE_OPEN_READONLY, &ro, err, sizeof(err)) == 0);
	CHECK(store_is_readonly(ro));
	CHECK(store_cs_get_by_anchor(ro, ad, "committed", 9, &o) == 0);
	o = store_cs_object_free(o);
	CHECK_INT_EQ(store_cs_get_by_anchor(ro, ad, "uncommitted", 11, &o), -ENOENT);
	CHECK_INT_EQ(upsert(ro, ad, "x", "CN=x", "user", a, 0, NULL, NULL), -EROFS);
	CHECK_INT_EQ(store_state_set(ro, "k", "v"), -EROFS);
	CHECK_INT_EQ(store_begin(ro), -EROFS);
	CHECK(store_pending_fingerprint(ro, fp1) == 0);
	/* an online backup from the reader while the writer's transaction is open */
	CHECK(store_backup(ro, path_in("backup-ro.db")) == 0);
	CHECK_INT_EQ(store_backup(w, path_in("never.db")), -EBUSY); /* inside a transaction */
	CHECK(store_commit(w) == 0);
	CHECK(store_cs_get_by_anchor(ro, ad, "uncommitted", 11, &o) == 0);
	o = store_cs_object_free(o);
	CHECK(store_check_integrity(ro, false) == 0);
	ro = store_close(ro);

	/* the reader's backup is the committed state before the commit */
	CHECK(store_open(path_in("backup-ro.db"), STORE_OPEN_READONLY, &copy, err, sizeof(err)) ==
	      0);
	CHECK(store_cs_count(copy, ad, &total, NULL) == 0);
	CHECK_INT_EQ(total, 1);
	copy = store_close(copy);

	/* the writer's backup: an identical, openable copy */
	CHECK(store_backup(w, path_in("backup.db")) == 0);
	CHECK(stat(path_in("backup.db.tmp"), &sb) < 0);
	copy = open_rw("backup.db");
	CHECK(store_check_integrity(copy, true) == 0);
	CHECK(store_get_stats(w, &st1) == 0);
	CHECK(store_get_stats(copy, &st2) == 0);
	CHECK_INT_EQ(st1.cs_objects, 2);
	CHECK_INT_EQ(st2.cs_objects, st1.cs_objects);
	CHECK_INT_EQ(st2.pending_exports, st1.pending_exports);
	CHECK_INT_EQ(st2.cs_pending_import, st1.cs_pending_import);
	CHECK(st2.file_bytes > 0);
	CHECK(store_pending_fingerprint(w, fp1) == 0);
	CHECK(store_pending_fingerprint(copy, fp2) == 0);
	CHECK_STR_EQ(fp1, fp2);
	CHECK(store_cs_get_by_anchor(copy, ad, "uncommitted", 11, &o) == 0);
	CHECK(attr_set_equal(o->attrs, a));
	o = store_cs_object_free(o);
	store_close(copy);

	attr_set_free(a);
	store_close(w);
}

static void test_corruption(void)
{
	struct store *s = open_rw("big.db"), *c = NULL;
	struct attr_set *a = person("Someone", "someone@corp.example.com", "Somewhere");
	char garbage[32768], err[256] = "";
	int64_t ad;
	struct stat sb;
	int fd, r, i;

	store_get_connector(s, "ad", &ad);
	CHECK(store_begin(s) == 0);
	for (i = 0; i < 3000; i++) {
		char anchor[32], dn[64];
		snprintf(anchor, sizeof(anchor), "guid-%d", i);
		snprintf(dn, sizeof(dn), "CN=user%d,OU=Staff,DC=corp", i);
		upsert(s, ad, anchor, dn, "user", a, 0, NULL, NULL);
	}
	CHECK(store_commit(s) == 0);
	store_close(s); /* checkpoints the WAL into the file */
	attr_set_free(a);

	CHECK(copy_file(path_in("big.db"), path_in("corrupt.db")) == 0);
	CHECK(stat(path_in("corrupt.db"), &sb) == 0);
	CHECK(sb.st_size > 200000);
	for (i = 0; i < (int)sizeof(garbage); i++)
		garbage[i] = (char)(i * 7 + 13);
	fd = open(path_in("corrupt.db"), O_WRONLY);
	CHECK(pwrite(fd, garbage, sizeof(garbage), sb.st_size / 2) == (ssize_t)sizeof(garbage));
	close(fd);

	r = store_open(path_in("corrupt.db"), 0, &c, err, sizeof(err));
	if (r == 0) {
		r = store_check_integrity(c, true);
		CHECK(strstr(store_last_error(c), "corrupt") != NULL);
		store_close(c);
	}
	CHECK_INT_EQ(r, -EBADMSG);

	/* the original passes */
	s = open_rw("big.db");
	CHECK(store_check_integrity(s, true) == 0);
	store_close(s);
}

static void cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_store.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	test_open_and_versions();
	test_cs();
	test_refs();
	test_migrate_refs();
	test_preencoded();
	test_bulk();
	test_bulk_many_members();
	test_bulk_rebuild_without_temp_files();
	test_bulk_cache_grows();
	test_bulk_checkpointer();
	test_bulk_map();
	test_bulk_resolve_in_passes();
	test_export_memory();
	test_mv();
	test_exports();
	test_runs();
	test_transactions();
	test_readonly_and_backup();
	test_corruption();
	cleanup();
	return check_finish();
}
