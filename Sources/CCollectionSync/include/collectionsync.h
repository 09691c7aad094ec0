/*
 * collectionsync.h: the C interface of collection-sync, an offline-first sync engine for
 * Twitter (X) v1.1 Collections. C99; C++ can include it as it is.
 *
 *     cc app.c $(pkg-config --cflags --libs collectionsync)
 *
 * Conventions, for every function:
 * - It blocks until done, and may be called from any thread, at the same time as any other.
 * - It returns a cs_status: CS_OK (0), or one of the sysexits codes of syncctl.md (64, 65, 69,
 *   74, 75, 77, 78), the same numbers `syncctl` exits with for the same failure.
 * - On failure, when `error` is not NULL, *error is a message for people (UTF-8, never holding a
 *   secret) that the caller frees with cs_free; on success *error is NULL.
 * - A complex result is a JSON document (UTF-8) with exactly the shape `syncctl --json` prints for
 *   the same command (syncctl.md, "JSON shapes"), in *result when `result` is not NULL, freed with
 *   cs_free; NULL on failure.
 * - Bad input (a NULL pointer where a value is needed, invalid UTF-8, a bad id, a closed handle,
 *   a second close) returns CS_USAGE with a message, and changes nothing. No call aborts the
 *   host process.
 */
#ifndef COLLECTIONSYNC_H
#define COLLECTIONSYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header's ABI; cs_abi_version() returns the library's. It changes only when a
 * function or type of an earlier version changes incompatibly: added functions keep it (version 1
 * gained the cs_collection_ calls, cs_collections and cs_observe_collections). */
#define CS_ABI_VERSION 1

typedef enum cs_status {
    CS_OK = 0,
    CS_USAGE = 64,       /* bad input: NULL, invalid UTF-8, a bad id, a closed handle */
    CS_DATAERR = 65,     /* ops were dead-lettered (a flush) */
    CS_UNAVAILABLE = 69, /* the API could not be reached */
    CS_IOERR = 74,       /* the database failed (busy past its timeout, full, corrupt, newer schema) */
    CS_TEMPFAIL = 75,    /* try again later (rate limited, another flusher, interrupted) */
    CS_NOPERM = 77,      /* the API rejected the credentials */
    CS_CONFIG = 78       /* configuration missing or unusable (credentials, base URL) */
} cs_status;

/* An open database (a local copy of collections and its outbox). */
typedef struct cs_store cs_store;

/* The library's ABI version (CS_ABI_VERSION when it matches this header). */
int cs_abi_version(void);

/* The library's version, e.g. "0.1.0": a static string, not to be freed. */
const char *cs_version(void);

/* Frees a string this library returned (a result or an error). NULL does nothing. */
void cs_free(char *text);

/* How a store opens. Zero in a field means its default. */
typedef struct cs_store_options {
    int busy_timeout_ms;         /* how long a write waits for another process's lock (default 5000) */
    int observation_interval_ms; /* how often observers poll where inotify is unavailable (default 50) */
} cs_store_options;

/*
 * Opens the database at `path`, creating it (mode 0600, parent folders included) and migrating
 * it as needed; the same file rules as SyncStore.open and syncctl's --db. `options` NULL: the
 * defaults. CS_IOERR for a file that is not a sound database or that a newer build wrote (left
 * untouched); CS_USAGE for a negative option.
 */
cs_status cs_store_open(const char *path, const cs_store_options *options, cs_store **store, char **error);

/*
 * Closes a store. The handle is invalid afterwards: using it, or closing it again, returns
 * CS_USAGE.
 */
cs_status cs_store_close(cs_store *store, char **error);

/*
 * Removes (adds) `count` tweets from (to) the local view of a collection and queues the ops, in
 * one transaction: all or nothing. Ids are checked first (collection ids custom-<digits>, or
 * local-N for one made here, tweet ids digits); one bad id, or a local id this database never
 * made, refuses the call (CS_USAGE). Result: {"queued":[...]}.
 */
cs_status cs_store_remove(cs_store *store, const char *collection_id, const char *const *tweet_ids, size_t count,
                          char **result, char **error);
cs_status cs_store_add(cs_store *store, const char *collection_id, const char *const *tweet_ids, size_t count,
                       char **result, char **error);

/* The local view of a collection. Result: {"collection_id":"...","entries":[...]}, whose
 * collection_id is the server id once a local id is bound. */
cs_status cs_store_entries(cs_store *store, const char *collection_id, char **result, char **error);

/* The queue and sync state. Result: syncctl status --json. */
cs_status cs_store_status(cs_store *store, char **result, char **error);

/* The outbox: `filter` is "waiting" (pending and in flight), "failed" or "all". Result: {"ops":[...]}. */
cs_status cs_store_outbox(cs_store *store, const char *filter, char **result, char **error);

/* The newest `limit` (1 or more) lines of the last-writer-wins log, conflicts only when
 * `conflicts_only` is not 0. Result: {"events":[...]}. */
cs_status cs_store_log(cs_store *store, int conflicts_only, int limit, char **result, char **error);

/* Puts dead-lettered ops back to pending, due now: these `count` ids, or every failed op when
 * `count` is 0. All or nothing (CS_USAGE for an unknown id or an op that is not failed).
 * Result: {"retried":[ids]}. */
cs_status cs_store_retry(cs_store *store, const int64_t *op_ids, size_t count, char **result, char **error);

/* Drops ops from the outbox (their local edits revert). All or nothing. Result: {"discarded":[ids]}. */
cs_status cs_store_discard(cs_store *store, const int64_t *op_ids, size_t count, char **result, char **error);

/* Deletes log lines older than `older_than_seconds` (0 or more), conflicts too when
 * `include_conflicts` is not 0. Result: {"pruned":N}. */
cs_status cs_store_prune(cs_store *store, int64_t older_than_seconds, int include_conflicts, char **result,
                         char **error);

/* ---- Collections made, changed and destroyed offline ----------------------------------------- */

/* Every call that takes a collection id (these, cs_store_*, cs_observe_entries, cs_engine_pull)
 * also takes a local id local-N: a collection made here. Once its create is applied the local id
 * is bound to the server's id (custom-...) for good and acts as it; documents show the server id. */

/*
 * Makes a collection in the store at once, with a new local id (local-N), and queues its create
 * (syncctl create). `name` 1 to 25 characters; `description` (NULL: "") at most 160; `url` (NULL:
 * "") empty or http(s) with a host; `order` (NULL: "curation_reverse_chron") one of
 * "curation_reverse_chron", "tweet_chron", "tweet_reverse_chron". A breach is CS_USAGE, nothing
 * written. Result: {"queued":[{"id":N,"op":"create","collection_id":"local-N","tweet_id":null}]}.
 */
cs_status cs_collection_create(cs_store *store, const char *name, const char *description, const char *url,
                               const char *order, char **result, char **error);

/*
 * Changes a collection's metadata locally and queues the update (syncctl update). NULL leaves a
 * field unchanged; "" clears a description or url; at least one field must be given, within the
 * limits of cs_collection_create. CS_USAGE for an unknown collection, one destroyed or being
 * destroyed, or one whose metadata is not known (never pulled and not made here).
 * Result: {"queued":[{"id":N,"op":"update","collection_id":"...","tweet_id":null}]}.
 */
cs_status cs_collection_update(cs_store *store, const char *collection_id, const char *name, const char *description,
                               const char *url, char **result, char **error);

/*
 * Destroys a collection locally and queues it (syncctl destroy): its waiting entry and update ops
 * are cancelled. Result: {"queued":[{"id":N,"op":"destroy",...}]}; or, for a collection whose
 * create was never sent, dropped with its ops and nothing sent: {"queued":[],"dropped":"local-N"}.
 * CS_USAGE for an unknown collection, or one destroyed, being destroyed or dropped.
 */
cs_status cs_collection_destroy(cs_store *store, const char *collection_id, char **result, char **error);

/* The collections of the store (syncctl collections). Result: {"collections":[{"id":"...",
 * "local_id":"local-N"|null,"name":"...","description":"...","url":"...","timeline_order":"...",
 * "pending":"create|update|destroy"|null,"gone":false,"entries":N}]}. */
cs_status cs_collections(cs_store *store, char **result, char **error);

/* ---- Observation ------------------------------------------------------------------------ */

/* Called with a JSON document (UTF-8, valid only during the call; copy it to keep it) and the
 * `context` given at registration. Called on a thread of the library, never on the caller's, one
 * call at a time per registration, in order. It must not unregister its own registration. */
typedef void (*cs_document_callback)(void *context, const char *json);

/* A registered callback: an observation of a view or of the status, or an engine's events. */
typedef struct cs_observation cs_observation;

/*
 * Observes the local view of a collection: `callback` gets its current document at once (the
 * shape of cs_store_entries), then a new one after each committed change to it, made by this
 * process or another on the same file (syncctl, a timer's flush), never the same twice in a row.
 * A local id's documents show its server id once it is bound; a local id this database never
 * made is CS_USAGE. Destroying the collection ends the calls.
 */
cs_status cs_observe_entries(cs_store *store, const char *collection_id, cs_document_callback callback, void *context,
                             cs_observation **observation, char **error);

/* The same for the queue and sync state (the shape of cs_store_status). */
cs_status cs_observe_status(cs_store *store, cs_document_callback callback, void *context,
                            cs_observation **observation, char **error);

/* The same for the store's collections (the shape of cs_collections): made, changed, bound to
 * their server ids, destroyed. */
cs_status cs_observe_collections(cs_store *store, cs_document_callback callback, void *context,
                                 cs_observation **observation, char **error);

/* Unregisters: returns only after the last call of its callback has finished; none follows. The
 * handle is invalid afterwards (a second call returns CS_USAGE). */
cs_status cs_observation_cancel(cs_observation *observation, char **error);

/* ---- The sync worker --------------------------------------------------------------------- */

/* An engine: replays a store's outbox against the API, pulls collections. */
typedef struct cs_engine cs_engine;

/* OAuth 1.0a user credentials (all four), or an app-only bearer token (the others NULL). */
typedef struct cs_credentials {
    const char *consumer_key;
    const char *consumer_secret;
    const char *access_token;
    const char *access_token_secret;
    const char *bearer_token;
} cs_credentials;

/* How an engine sends. Zero in a field means its default. */
typedef struct cs_engine_options {
    int batch_size;  /* changes per entries/curate request, 1 to 100 (default 100) */
    int concurrency; /* requests in flight at once, 1 or more (default 4) */
} cs_engine_options;

/*
 * Makes an engine for `store`. `api_base` NULL: $SYNCCTL_API_BASE, else
 * https://api.twitter.com/1.1 (https, or http to a loopback host only). `credentials` NULL: read
 * as syncctl reads them, from the file $SYNCCTL_CREDENTIALS names (owner-only) or else from
 * $TWITTER_CONSUMER_KEY, ... or $TWITTER_BEARER_TOKEN. `options` NULL: the defaults. CS_CONFIG
 * when no usable base URL or credentials are found. The user whose collections are listed before
 * a create (to create exactly once) is TWITTER_USER_ID, read where the credentials are (from the
 * environment when `credentials` is given), else the access token's numeric prefix; with neither
 * (a bearer token alone) creates wait and cs_engine_flush says CS_CONFIG. The engine keeps the
 * store usable; destroy the engine before closing the store.
 */
cs_status cs_engine_create(cs_store *store, const char *api_base, const cs_credentials *credentials,
                           const cs_engine_options *options, cs_engine **engine, char **error);

/* Stops its watch if running, waits for it, and releases the engine. The handle is invalid
 * afterwards. */
cs_status cs_engine_destroy(cs_engine *engine, char **error);

/*
 * Flushes the outbox once: `deadline_seconds` bounds it (0: none; else 0 to 1e9), `wait` (not 0)
 * sleeps through backoff and rate-limit waits until the queue is empty or the deadline passes.
 * Result: syncctl flush --json's document, also on failure. Its status is syncctl flush's exit code:
 * CS_OK, CS_CONFIG, CS_NOPERM, CS_UNAVAILABLE, CS_TEMPFAIL, CS_DATAERR (ops were dead-lettered).
 */
cs_status cs_engine_flush(cs_engine *engine, double deadline_seconds, int wait, char **result, char **error);

/* Pulls a collection and merges it (last writer wins). Result: syncctl pull --json's document. */
cs_status cs_engine_pull(cs_engine *engine, const char *collection_id, double deadline_seconds, char **result,
                         char **error);

/* Starts the watch loop in the background (syncctl watch): flushes whenever ops are due, until
 * cs_engine_watch_stop. CS_USAGE when it already runs. */
cs_status cs_engine_watch_start(cs_engine *engine, char **error);

/* Stops the watch: lets the answers on the wire land, and returns once it has stopped. */
cs_status cs_engine_watch_stop(cs_engine *engine, char **error);

/* Registers `callback` for the engine's events, each a document of syncctl watch --json
 * (applied, reconciled, failed, waiting, rate_limited, unreachable, auth_rejected), on a thread
 * of the library. Unregister with cs_observation_cancel. */
cs_status cs_engine_events(cs_engine *engine, cs_document_callback callback, void *context,
                           cs_observation **observation, char **error);

#ifdef __cplusplus
}
#endif

#endif /* COLLECTIONSYNC_H */
