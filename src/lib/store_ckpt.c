/* The bulk load's checkpointer (see store_internal.h).
 *
 * In WAL mode every commit appends the pages it changed to the WAL; a checkpoint copies them
 * into the database file, with an fsync of the WAL before and of the database after. SQLite
 * runs it inside the commit that takes the WAL past 1000 pages, on the committing thread: in a
 * first full import, the writer stopped after each batch to copy it and wait for the disk.
 * During a bulk load a thread with its own connection does that instead (a PASSIVE checkpoint
 * runs beside a writer), and the writer goes on with the next batch.
 *
 * The WAL is rewound to its start only by a transaction that begins once every page in it has
 * been copied; with the checkpoint of the last batch still running, the next batch appends.
 * So once the WAL holds store_ckpt_wal_max bytes, the next transaction first waits for the
 * checkpoint under way: the WAL stays under that plus one transaction (as long as no other
 * connection keeps reading an older state, which stops any checkpoint short). */
#include <pthread.h>
#include <stdlib.h>

#include "store_internal.h"

size_t store_ckpt_wal_max = STORE_CKPT_WAL_MAX;
unsigned store_ckpt_runs;

struct store_ckpt {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* work for the thread; the thread idle again; stop */
	sqlite3 *db;         /* the thread's own connection */
	int wal_pages;       /* in the WAL after the last commit */
	int wal_max_pages;   /* store_ckpt_wal_max in pages */
	int autocheckpoint;  /* the writer's wal_autocheckpoint before the load (pages) */
	bool wanted;         /* a commit the thread has not checkpointed yet */
	bool busy;           /* a checkpoint is under way */
	bool stop;
};

static void *ckpt_main(void *arg)
{
	struct store_ckpt *k = arg;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->wanted && !k->stop)
			pthread_cond_wait(&k->cond, &k->lock);
		if (k->stop)
			break;
		k->wanted = false;
		k->busy = true;
		pthread_mutex_unlock(&k->lock);
		/* SQLITE_BUSY (another checkpoint under way) or an error: the next commit asks
		 * again, and after the load SQLite's own checkpoints take over. */
		if (sqlite3_wal_checkpoint_v2(k->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL,
		                              NULL) == SQLITE_OK)
			__atomic_add_fetch(&store_ckpt_runs, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&k->lock);
		k->busy = false;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* After each commit of the writer's connection, with the pages now in the WAL (SQLite's own
 * hook, sqlite3_wal_autocheckpoint's, is replaced while the thread runs). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store_ckpt *k = arg;

	(void)db;
	(void)name;
	pthread_mutex_lock(&k->lock);
	k->wal_pages = pages;
	if ((k->autocheckpoint > 0 && pages >= k->autocheckpoint) || pages >= k->wal_max_pages) {
		k->wanted = true;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
	return SQLITE_OK;
}

static void ckpt_free(struct store_ckpt *k)
{
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	sqlite3_close(k->db);
	free(k);
}

void store_ckpt_start(struct store *s)
{
	const char *path = sqlite3_db_filename(s->db, "main");
	sqlite3_vfs *vfs = NULL;
	int64_t page = store_pragma_get(s, "PRAGMA page_size");
	struct store_ckpt *k;

	if (s->ckpt || s->readonly || !path || !*path || page <= 0)
		return; /* a temporary or in-memory database has no WAL */
	k = calloc(1, sizeof(*k));
	if (!k)
		return;
	k->wal_max_pages = (int)(store_ckpt_wal_max / (size_t)page);
	k->autocheckpoint = (int)store_pragma_get(s, "PRAGMA wal_autocheckpoint");
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		return;
	}
	if (pthread_cond_init(&k->cond, NULL) != 0) {
		pthread_mutex_destroy(&k->lock);
		free(k);
		return;
	}
	/* Not being there is not an error: SQLite's checkpoints on the writer stay. The first
	 * read opens the WAL, which a checkpoint needs. A cache of its own: a shared one would
	 * make each checkpoint SQLITE_LOCKED while the writer's transaction is open. */
	(void)sqlite3_file_control(s->db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs);
	if (sqlite3_open_v2(path, &k->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE,
	                    vfs ? vfs->zName : NULL) != SQLITE_OK ||
	    sqlite3_exec(k->db, "PRAGMA schema_version", NULL, NULL, NULL) != SQLITE_OK ||
	    pthread_create(&k->thread, NULL, ckpt_main, k) != 0) {
		ckpt_free(k);
		return;
	}
	s->ckpt = k;
	sqlite3_wal_hook(s->db, wal_hook, k);
}

void store_ckpt_before_begin(struct store *s)
{
	struct store_ckpt *k = s->ckpt;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	if (k->wal_pages >= k->wal_max_pages)
		while (k->wanted || k->busy)
			pthread_cond_wait(&k->cond, &k->lock);
	pthread_mutex_unlock(&k->lock);
}

void store_ckpt_stop(struct store *s)
{
	struct store_ckpt *k = s->ckpt;

	if (!k)
		return;
	sqlite3_wal_autocheckpoint(s->db, k->autocheckpoint);
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	ckpt_free(k);
	s->ckpt = NULL;
}
