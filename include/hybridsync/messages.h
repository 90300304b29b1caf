/* hybridsync: every journald MESSAGE_ID in one place. systemd/hybridsync.catalog explains each. */
#pragma once

#define HS_MSG_DAEMON_STARTED     "726bf9df18034fc2809314c252f8ab61"
#define HS_MSG_DAEMON_STOPPING    "b0da04dc4f7d4d31b2ebf1d83fc86d19"
#define HS_MSG_CYCLE_STARTED      "1b39975fe27449bb892fee364a919395"
#define HS_MSG_CYCLE_FINISHED     "cf5194a5a2f1465984e266120bfce109"
#define HS_MSG_STAGING_CHANGED    "cd2c8ec6dffb42fb8048cdbac422085c"
#define HS_MSG_THRESHOLD_EXCEEDED "9dfec9cf414549139e630e92593c33c5"
#define HS_MSG_RELOAD_FAILED      "1fb2bb268bc44fa2928223bd31f889c5"
#define HS_MSG_RELOAD_DONE        "70ab68f6224c4e71a8a6b83fc4fb0784"
#define HS_MSG_EXPORT_ERROR       "ce08fe64c4ef4a6d8ddb21c143e36c02"
#define HS_MSG_IMPORT_ERROR       "4c67769ea276482a83cd644d58d64f56"
#define HS_MSG_SYNC_ERROR         "6fc0c8628e42449983c0ec708a645b6d"
#define HS_MSG_LEASE_CONFLICT     "166967408d704d2d8af981333de986fd"
#define HS_MSG_CONFIG_DRIFT       "83fb7aa27c06420cb276b98d1d5c1572"
#define HS_MSG_DELETES_ALLOWED    "9cef51881f1e485e90cbbe523908a059"
#define HS_MSG_PEER_RETRY         "ed460f1f7ee24a73ac5cf05a657ee37a"
#define HS_MSG_BIND_REFUSED       "5b1823e03da84a989e26c2fa7c9c7d7a"
