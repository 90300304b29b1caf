/* The store's schema as an ordered list of migrations, applied one transaction each and
 * recorded in PRAGMA user_version. docs/store-schema.md explains every table and index. */
#include "store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* 'HYBS': marks the file as ours, so a foreign SQLite file is refused instead of migrated. */
#define STORE_APPLICATION_ID 0x48594253

struct migration {
	int version;
	const char *what;
	const char *sql;
};

/* Never edit a released step: add a new one. Each runs inside one transaction. */
static const struct migration migrations[] = {
    {1, "initial schema",
     "CREATE TABLE connectors ("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE,"
     "  type TEXT NOT NULL"
     ");"
     "INSERT INTO connectors(name, type) VALUES ('ad', 'ldap'), ('graph', 'graph');"

     "CREATE TABLE cursors ("
     "  connector_id INTEGER NOT NULL REFERENCES connectors(id) ON DELETE CASCADE,"
     "  partition TEXT NOT NULL,"
     "  kind TEXT NOT NULL CHECK (kind IN ('dirsync', 'usn', 'syncrepl', 'deltalink')),"
     "  value BLOB NOT NULL,"
     "  updated INTEGER NOT NULL,"
     "  PRIMARY KEY (connector_id, partition, kind)"
     ") WITHOUT ROWID;"

     "CREATE TABLE mv_objects ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  object_type TEXT NOT NULL,"
     "  source_anchor TEXT,"
     "  created INTEGER NOT NULL,"
     "  updated INTEGER NOT NULL,"
     "  attrs_digest BLOB NOT NULL,"
     "  attrs BLOB NOT NULL"
     ");"
     "CREATE UNIQUE INDEX mv_objects_source_anchor ON mv_objects(source_anchor)"
     "  WHERE source_anchor IS NOT NULL;"

     "CREATE TABLE mv_index ("
     "  attr TEXT NOT NULL,"
     "  value BLOB NOT NULL,"
     "  mv_id INTEGER NOT NULL REFERENCES mv_objects(id) ON DELETE CASCADE,"
     "  PRIMARY KEY (attr, value, mv_id)"
     ") WITHOUT ROWID;"
     "CREATE INDEX mv_index_mv ON mv_index(mv_id);"

     "CREATE TABLE cs_objects ("
     "  id INTEGER PRIMARY KEY,"
     "  connector_id INTEGER NOT NULL REFERENCES connectors(id),"
     "  anchor BLOB,"
     "  dn TEXT COLLATE NOCASE,"
     "  object_class TEXT NOT NULL,"
     "  pending_import INTEGER NOT NULL DEFAULT 0 CHECK (pending_import BETWEEN 0 AND 4),"
     "  pending_import_since INTEGER,"
     "  mv_id INTEGER REFERENCES mv_objects(id) ON DELETE SET NULL,"
     "  last_import_run INTEGER,"
     "  flags INTEGER NOT NULL DEFAULT 0,"
     "  seen_gen INTEGER NOT NULL DEFAULT 0,"
     "  created INTEGER NOT NULL,"
     "  updated INTEGER NOT NULL,"
     "  attrs_digest BLOB NOT NULL,"
     "  attrs BLOB NOT NULL"
     ");"
     "CREATE UNIQUE INDEX cs_objects_anchor ON cs_objects(connector_id, anchor);"
     "CREATE INDEX cs_objects_dn ON cs_objects(connector_id, dn);"
     "CREATE INDEX cs_objects_mv ON cs_objects(mv_id) WHERE mv_id IS NOT NULL;"
     "CREATE INDEX cs_objects_pending ON cs_objects(connector_id, id)"
     "  WHERE pending_import <> 0;"

     "CREATE TABLE cs_refs ("
     "  cs_id INTEGER NOT NULL REFERENCES cs_objects(id) ON DELETE CASCADE,"
     "  attr TEXT NOT NULL COLLATE NOCASE,"
     "  target_dn TEXT NOT NULL COLLATE NOCASE,"
     "  connector_id INTEGER NOT NULL,"
     "  target_cs_id INTEGER REFERENCES cs_objects(id) ON DELETE SET NULL,"
     "  PRIMARY KEY (cs_id, attr, target_dn)"
     ") WITHOUT ROWID;"
     "CREATE INDEX cs_refs_target ON cs_refs(target_cs_id) WHERE target_cs_id IS NOT NULL;"
     "CREATE INDEX cs_refs_unresolved ON cs_refs(connector_id, target_dn)"
     "  WHERE target_cs_id IS NULL;"

     "CREATE TABLE cs_export_memory ("
     "  cs_id INTEGER PRIMARY KEY REFERENCES cs_objects(id) ON DELETE CASCADE,"
     "  run_id INTEGER,"
     "  exported INTEGER NOT NULL,"
     "  changes BLOB NOT NULL"
     ");"
     "CREATE TABLE cs_export_members ("
     "  cs_id INTEGER NOT NULL REFERENCES cs_objects(id) ON DELETE CASCADE,"
     "  member TEXT NOT NULL,"
     "  op TEXT NOT NULL CHECK (op IN ('add', 'remove')),"
     "  exported INTEGER NOT NULL,"
     "  PRIMARY KEY (cs_id, member)"
     ") WITHOUT ROWID;"

     "CREATE TABLE pending_exports ("
     "  id INTEGER PRIMARY KEY,"
     "  connector_id INTEGER NOT NULL REFERENCES connectors(id),"
     "  object_type TEXT NOT NULL,"
     "  anchor TEXT NOT NULL,"
     "  op TEXT NOT NULL CHECK (op IN ('add', 'update', 'delete')),"
     "  cs_id INTEGER REFERENCES cs_objects(id) ON DELETE SET NULL,"
     "  mv_id INTEGER REFERENCES mv_objects(id) ON DELETE SET NULL,"
     "  dn TEXT,"
     "  target_id TEXT,"
     "  changes_digest BLOB NOT NULL,"
     "  n_members INTEGER NOT NULL DEFAULT 0,"
     "  members_digest BLOB NOT NULL,"
     "  rules TEXT,"
     "  run_id INTEGER,"
     "  cause TEXT,"
     "  state TEXT NOT NULL DEFAULT 'pending'"
     "    CHECK (state IN ('pending', 'in_flight', 'error', 'done')),"
     "  state_since INTEGER,"
     "  attempts INTEGER NOT NULL DEFAULT 0,"
     "  error_code TEXT,"
     "  error_message TEXT,"
     "  request_id TEXT,"
     "  sync_gen INTEGER NOT NULL DEFAULT 0,"
     "  created INTEGER NOT NULL,"
     "  updated INTEGER NOT NULL,"
     "  changes BLOB NOT NULL,"
     "  UNIQUE (connector_id, object_type, anchor)"
     ");"
     "CREATE INDEX pending_exports_state_op ON pending_exports(state, op);"
     "CREATE INDEX pending_exports_cs ON pending_exports(cs_id) WHERE cs_id IS NOT NULL;"
     "CREATE INDEX pending_exports_mv ON pending_exports(mv_id) WHERE mv_id IS NOT NULL;"
     "CREATE TABLE pending_export_members ("
     "  export_id INTEGER NOT NULL REFERENCES pending_exports(id) ON DELETE CASCADE,"
     "  member_anchor TEXT NOT NULL,"
     "  op TEXT NOT NULL CHECK (op IN ('add', 'remove')),"
     "  target_id TEXT,"
     "  PRIMARY KEY (export_id, member_anchor)"
     ") WITHOUT ROWID;"

     "CREATE TABLE runs ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  type TEXT NOT NULL CHECK (type IN ('initial', 'delta')),"
     "  status TEXT,"
     "  started INTEGER NOT NULL,"
     "  finished INTEGER,"
     "  config_hash TEXT"
     ");"
     "CREATE INDEX runs_started ON runs(started);"
     "CREATE TABLE run_steps ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
     "  connector TEXT,"
     "  step TEXT NOT NULL CHECK (step IN ('full-import', 'delta-import', 'full-sync',"
     "                                    'delta-sync', 'export')),"
     "  status TEXT,"
     "  started INTEGER NOT NULL,"
     "  finished INTEGER,"
     "  adds INTEGER NOT NULL DEFAULT 0,"
     "  updates INTEGER NOT NULL DEFAULT 0,"
     "  deletes INTEGER NOT NULL DEFAULT 0,"
     "  errors INTEGER NOT NULL DEFAULT 0,"
     "  objects INTEGER NOT NULL DEFAULT 0"
     ");"
     "CREATE INDEX run_steps_run ON run_steps(run_id);"
     "CREATE TABLE run_errors ("
     "  id INTEGER PRIMARY KEY,"
     "  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
     "  step_id INTEGER REFERENCES run_steps(id) ON DELETE CASCADE,"
     "  time INTEGER NOT NULL,"
     "  anchor TEXT,"
     "  dn TEXT,"
     "  code TEXT,"
     "  message TEXT,"
     "  request_id TEXT"
     ");"
     "CREATE INDEX run_errors_run ON run_errors(run_id);"
     "CREATE INDEX run_errors_step ON run_errors(step_id) WHERE step_id IS NOT NULL;"

     "CREATE TABLE config_snapshots ("
     "  hash TEXT PRIMARY KEY,"
     "  created INTEGER NOT NULL,"
     "  json TEXT NOT NULL"
     ");"
     "CREATE TABLE audit_events ("
     "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
     "  time INTEGER NOT NULL,"
     "  kind TEXT NOT NULL,"
     "  uid INTEGER,"
     "  detail TEXT,"
     "  fingerprint TEXT"
     ");"
     "CREATE TABLE lease ("
     "  id INTEGER PRIMARY KEY CHECK (id = 1),"
     "  holder TEXT NOT NULL,"
     "  config_hash TEXT,"
     "  renewed INTEGER NOT NULL,"
     "  graph_object_id TEXT,"
     "  seen INTEGER NOT NULL"
     ");"
     "CREATE TABLE state ("
     "  key TEXT PRIMARY KEY,"
     "  value TEXT NOT NULL"
     ") WITHOUT ROWID;"
     "INSERT INTO state(key, value) VALUES"
     "  ('mv.index_attrs', 'cloudanchor,mail:ci,objectsid,sourceanchor,userprincipalname:ci');"},
    /* A resolved reference keeps only the target's id: its DN is the target's, read by a join,
     * so the row and its reverse index no longer carry the DN text twice (the first full
     * import of a large directory spent half of its store time on it). target_cs_id 0 is
     * unresolved; a deleted target turns back into its DN (trigger), as SET NULL did. */
    {2, "references by id",
     "CREATE TABLE cs_refs_v2 ("
     "  cs_id INTEGER NOT NULL REFERENCES cs_objects(id) ON DELETE CASCADE,"
     "  attr TEXT NOT NULL COLLATE NOCASE,"
     "  target_cs_id INTEGER NOT NULL,"
     "  target_dn TEXT NOT NULL COLLATE NOCASE,"
     "  connector_id INTEGER NOT NULL,"
     "  PRIMARY KEY (cs_id, attr, target_cs_id, target_dn)"
     ") WITHOUT ROWID;"
     "INSERT OR IGNORE INTO cs_refs_v2(cs_id, attr, target_cs_id, target_dn, connector_id)"
     "  SELECT cs_id, attr, coalesce(target_cs_id, 0),"
     "   CASE WHEN target_cs_id IS NULL THEN target_dn ELSE '' END, connector_id FROM cs_refs;"
     "DROP TABLE cs_refs;"
     "ALTER TABLE cs_refs_v2 RENAME TO cs_refs;"
     "CREATE INDEX cs_refs_target ON cs_refs(target_cs_id) WHERE target_cs_id <> 0;"
     "CREATE INDEX cs_refs_unresolved ON cs_refs(connector_id, target_dn)"
     "  WHERE target_cs_id = 0;"
     "CREATE TRIGGER cs_refs_unresolve BEFORE DELETE ON cs_objects BEGIN"
     "  UPDATE OR REPLACE cs_refs SET target_cs_id = 0, target_dn = old.dn"
     "   WHERE target_cs_id = old.id AND target_cs_id <> 0 AND old.dn IS NOT NULL;"
     "  DELETE FROM cs_refs WHERE target_cs_id = old.id AND target_cs_id <> 0;"
     " END;"},
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int store_schema_version(void)
{
	return migrations[N_MIGRATIONS - 1].version;
}

static int pragma_int(struct store *s, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = store_fail(s, rc);
	sqlite3_finalize(st);
	return r;
}

static int set_user_version(struct store *s, int version)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", version);
	return store_exec(s, sql);
}

/* Refuses what is not ours or is newer than this code; returns the file's version. */
static int identify(struct store *s, int64_t *ret_version)
{
	int64_t version = 0, app = 0, tables = 0;
	int r;

	r = pragma_int(s, "PRAGMA user_version", &version);
	if (r == -EBADMSG)
		return store_failf(s, r, "%s is not a database or is corrupt: %s", s->path,
		                   sqlite3_errmsg(s->db));
	if (r >= 0)
		r = pragma_int(s, "PRAGMA application_id", &app);
	if (r >= 0)
		r = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables);
	if (r < 0)
		return r;
	if ((app != 0 && app != STORE_APPLICATION_ID) || (app == 0 && tables > 0))
		return store_failf(s, -EPROTO, "%s is not a hybridsync database", s->path);
	if (version > store_schema_version())
		return store_failf(
		    s, -EPROTO,
		    "database %s has schema version %lld, newer than this hybridsync "
		    "supports (%d): run a newer hybridsync or restore a backup",
		    s->path, (long long)version, store_schema_version());
	if (version < 0)
		return store_failf(s, -EPROTO, "database %s has an invalid schema version %lld",
		                   s->path, (long long)version);
	*ret_version = version;
	return 0;
}

int store_check_version(struct store *s)
{
	int64_t version;
	int r;

	r = identify(s, &version);
	if (r < 0)
		return r;
	if (version != store_schema_version())
		return store_failf(s, -EPROTO,
		                   "database %s has schema version %lld, this hybridsync needs %d: "
		                   "start hybridsyncd once to migrate it",
		                   s->path, (long long)version, store_schema_version());
	return 0;
}

static int apply(struct store *s, const struct migration *m)
{
	int64_t version;
	char sql[64];
	int r;

	r = store_tx_begin(s);
	if (r < 0)
		return r;
	/* Another process may have migrated between our check and our write lock. */
	r = identify(s, &version);
	if (r < 0 || version >= m->version)
		goto out;
	r = store_exec(s, m->sql);
	if (r < 0) {
		char cause[STORE_ERRMSG_MAX];
		/* copied: the message is written into the buffer that holds the cause */
		snprintf(cause, sizeof(cause), "%s", store_last_error(s));
		store_failf(s, r, "migration to schema version %d (%s) failed: %s", m->version,
		            m->what, cause);
		goto out;
	}
	if (m->version == 1) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", STORE_APPLICATION_ID);
		r = store_exec(s, sql);
	}
	if (r >= 0)
		r = set_user_version(s, m->version);
out:
	if (r >= 0)
		r = store_tx_commit(s);
	if (r < 0)
		store_tx_rollback(s);
	return r;
}

int store_migrate(struct store *s)
{
	int64_t version;
	size_t i;
	int r;

	r = identify(s, &version);
	if (r < 0)
		return r;
	for (i = 0; i < N_MIGRATIONS; i++) {
		if (migrations[i].version <= version)
			continue;
		r = apply(s, &migrations[i]);
		if (r < 0)
			return r;
	}
	return 0;
}
