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

/* The version of this header's ABI; cs_abi_version() returns the library's. */
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

/*
 * Opens the database at `path`, creating it (mode 0600, parent folders included) and migrating
 * it as needed; the same file rules as SyncStore.open and syncctl's --db. CS_IOERR for a file
 * that is not a sound database or that a newer build wrote (left untouched).
 */
cs_status cs_store_open(const char *path, cs_store **store, char **error);

/*
 * Closes a store. The handle is invalid afterwards: using it, or closing it again, returns
 * CS_USAGE.
 */
cs_status cs_store_close(cs_store *store, char **error);

/*
 * Removes (adds) `count` tweets from (to) the local view of a collection and queues the ops, in
 * one transaction: all or nothing. Ids are checked first (collection ids custom-<digits>, tweet
 * ids digits); one bad id refuses the call (CS_USAGE). Result: {"queued":[...]}.
 */
cs_status cs_store_remove(cs_store *store, const char *collection_id, const char *const *tweet_ids, size_t count,
                          char **result, char **error);
cs_status cs_store_add(cs_store *store, const char *collection_id, const char *const *tweet_ids, size_t count,
                       char **result, char **error);

/* The local view of a collection. Result: {"collection_id":"...","entries":[...]}. */
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

#ifdef __cplusplus
}
#endif

#endif /* COLLECTIONSYNC_H */
