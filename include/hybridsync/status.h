/* What the daemon tells hybridsyncctl through the store's state table (store_state_get/set):
 * the keys, written by hybridsyncd, read by the CLI's read-only verbs. Times are Unix seconds
 * in decimal; booleans "1"/"0". */
#pragma once

#define STATUS_KEY_PID "daemon.pid" /* set while running, removed at exit */
#define STATUS_KEY_STATE                                                                           \
	"daemon.state" /* idle, importing, syncing, exporting, stopping, stopped                   \
	                */
#define STATUS_KEY_STEP           "daemon.step"        /* human text, as in STATUS= */
#define STATUS_KEY_STAGING        "daemon.staging"     /* the running config's staging flag */
#define STATUS_KEY_CONFIG_HASH    "daemon.config_hash" /* the running config's hash */
#define STATUS_KEY_NEXT_CYCLE     "daemon.next_cycle"  /* when the next delta cycle is due */
#define STATUS_KEY_RELOAD_TIME    "daemon.reload.time"
#define STATUS_KEY_RELOAD_OK      "daemon.reload.ok"
#define STATUS_KEY_RELOAD_ERROR   "daemon.reload.error"   /* FILE:LINE: message, empty when ok */
#define STATUS_KEY_CONTROL_SOCKET "daemon.control_socket" /* path of the control socket */
#define STATUS_KEY_INITIAL_HASH                                                                    \
	"sync.initial_hash" /* config hash of the last completed initial cycle */
#define STATUS_KEY_THRESHOLD "export.threshold" /* "N deletes > limit L" while stopped by it */
#define STATUS_KEY_ALLOW_DELETES                                                                   \
	"export.allow_deletes"               /* pending-deletes fingerprint allowed once */
#define STATUS_KEY_LEASE_ALERT "lease.alert" /* text while a foreign lease blocks export */
#define STATUS_KEY_DRIFT       "lease.drift" /* active server's hash when it differs */
