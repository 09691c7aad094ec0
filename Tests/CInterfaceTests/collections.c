/*
 * Collections made, changed and destroyed offline, from C. Offline, on OFFLINE_DATABASE: create,
 * update, destroy (a collection whose create was never sent is dropped), the list, and every kind
 * of bad input, each answered with CS_USAGE and a message, nothing written. Then against the API
 * (its base URL and credentials from the environment, as syncctl reads them), on SYNC_DATABASE:
 * create, add and rename offline, flush, and the local id bound to the server's id, seen by
 * cs_collections, the view, pull and the observation callbacks; then a destroy. Built by
 * CInterfaceTests from the header alone, with -pthread.
 *
 *     collections OFFLINE_DATABASE SYNC_DATABASE
 */
#include <collectionsync.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures = 0;

#define CHECK(condition) do { \
    if (!(condition)) { fprintf(stderr, "collections.c:%d: check failed: %s\n", __LINE__, #condition); failures++; } \
} while (0)

/* Whether `text` contains `part` (NULL never does). */
static int has(const char *text, const char *part) { return text != NULL && strstr(text, part) != NULL; }

/* Expects `status` with a message, and no result. */
static void refused(cs_status status, cs_status expected, char *result, char *error, int line) {
    if (status != expected || error == NULL || error[0] == '\0' || result != NULL) {
        fprintf(stderr, "collections.c:%d: expected status %d with a message, got %d (%s)\n", line, (int)expected,
                (int)status, error ? error : "no message");
        failures++;
    }
    cs_free(result);
    cs_free(error);
}

/* Expects CS_OK and a result containing `part`; prints the result otherwise. Frees it. */
static void answered(cs_status status, char *result, char *error, const char *part, int line) {
    if (status != CS_OK || error != NULL || !has(result, part)) {
        fprintf(stderr, "collections.c:%d: expected %s, got status %d: %s (%s)\n", line, part, (int)status,
                result ? result : "no result", error ? error : "no message");
        failures++;
    }
    cs_free(result);
    cs_free(error);
}

/* The current list, for comparing before and after a refused call. */
static char *listing(cs_store *store) {
    char *result = NULL;
    if (cs_collections(store, &result, NULL) != CS_OK) return NULL;
    return result;
}

/* What a callback saw: how many documents, the last one, and all of them. Callbacks run on
 * library threads. */
typedef struct seen {
    pthread_mutex_t lock;
    int count;
    char last[65536];
    char all[262144];
} seen;

static void remember(void *context, const char *json) {
    seen *s = context;
    pthread_mutex_lock(&s->lock);
    s->count++;
    snprintf(s->last, sizeof s->last, "%s", json);
    size_t used = strlen(s->all);
    snprintf(s->all + used, sizeof s->all - used, "%s\n", json);
    pthread_mutex_unlock(&s->lock);
}

/* Waits (up to 30 s) until the last document seen contains `part` (or, with `anywhere`, any did). */
static int until_seen(seen *s, const char *part, int anywhere) {
    struct timespec pause = {0, 2000000};
    for (int i = 0; i < 15000; i++) {
        pthread_mutex_lock(&s->lock);
        int found = strstr(anywhere ? s->all : s->last, part) != NULL;
        pthread_mutex_unlock(&s->lock);
        if (found) return 1;
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "collections.c: timed out waiting for %s; last seen: %s\n", part, s->last);
    return 0;
}

static void reset(seen *s) {
    pthread_mutex_init(&s->lock, NULL);
    s->count = 0;
    s->last[0] = '\0';
    s->all[0] = '\0';
}

/* Copies the string value after `"key":"` in `json` into `out`; 1 when found. */
static int value_of(const char *json, const char *key, char *out, size_t size) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *start = json ? strstr(json, pattern) : NULL;
    if (start == NULL) return 0;
    start += strlen(pattern);
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= size) return 0;
    memcpy(out, start, (size_t)(end - start));
    out[end - start] = '\0';
    return 1;
}

static void noop(void *context, const char *json) { (void)context; (void)json; }

/* ---- Offline --------------------------------------------------------------------------------- */

static void offline(const char *path) {
    char *result = NULL, *error = NULL;
    cs_store *store = NULL;
    cs_status status;
    CHECK(cs_store_open(path, NULL, &store, &error) == CS_OK && store != NULL);

    status = cs_collections(store, &result, &error);
    answered(status, result, error, "{\"collections\":[]}", __LINE__);

    /* Made at once with a local id; NULL description, url and order are the defaults. */
    status = cs_collection_create(store, "Trip", NULL, NULL, NULL, &result, &error);
    answered(status, result, error,
             "{\"queued\":[{\"id\":1,\"op\":\"create\",\"collection_id\":\"local-1\",\"tweet_id\":null}]}", __LINE__);
    status = cs_collection_create(store, "Caf\xc3\xa9 \xe2\x98\x95", "Coffee places", "https://example.com/coffee",
                                  "tweet_chron", &result, &error);
    answered(status, result, error, "\"op\":\"create\",\"collection_id\":\"local-2\"", __LINE__);
    status = cs_collections(store, &result, &error);
    answered(status, result, error,
             "{\"id\":\"local-1\",\"local_id\":\"local-1\",\"name\":\"Trip\",\"description\":\"\",\"url\":\"\","
             "\"timeline_order\":\"curation_reverse_chron\",\"pending\":\"create\",\"gone\":false,\"entries\":0}", __LINE__);
    CHECK(cs_collections(store, &result, NULL) == CS_OK);
    CHECK(has(result, "{\"id\":\"local-2\",\"local_id\":\"local-2\",\"name\":\"Caf\xc3\xa9 \xe2\x98\x95\","
                      "\"description\":\"Coffee places\",\"url\":\"https://example.com/coffee\","
                      "\"timeline_order\":\"tweet_chron\",\"pending\":\"create\""));
    cs_free(result);

    /* The limits at their edges: 25 code points (50 bytes of UTF-8), a description of 160. */
    const char *e25 = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    char d160[161], d161[162], n26[64];
    memset(d160, 'd', 160); d160[160] = '\0';
    memset(d161, 'd', 161); d161[161] = '\0';
    snprintf(n26, sizeof n26, "%sx", e25);
    status = cs_collection_create(store, e25, d160, "", "tweet_reverse_chron", NULL, &error);
    CHECK(status == CS_OK && error == NULL);   /* local-3; no result asked for */

    /* Update: only the fields given; "" clears. Edits of a collection made here, before its create is sent. */
    status = cs_collection_update(store, "local-2", "Coffee", NULL, "", &result, &error);
    answered(status, result, error,
             "{\"queued\":[{\"id\":4,\"op\":\"update\",\"collection_id\":\"local-2\",\"tweet_id\":null}]}", __LINE__);
    CHECK(cs_collections(store, &result, NULL) == CS_OK);
    CHECK(has(result, "\"id\":\"local-2\",\"local_id\":\"local-2\",\"name\":\"Coffee\",\"description\":\"Coffee places\",\"url\":\"\""));
    cs_free(result);

    /* Every call that takes a collection id takes a local id. */
    const char *tweets[] = {"300", "301"};
    status = cs_store_add(store, "local-2", tweets, 2, &result, &error);
    answered(status, result, error, "{\"id\":5,\"op\":\"add\",\"collection_id\":\"local-2\",\"tweet_id\":\"300\"}", __LINE__);
    status = cs_store_remove(store, "local-2", tweets + 1, 1, &result, &error);
    answered(status, result, error, "\"op\":\"remove\",\"collection_id\":\"local-2\",\"tweet_id\":\"301\"", __LINE__);
    status = cs_store_entries(store, "local-2", &result, &error);
    answered(status, result, error,
             "{\"collection_id\":\"local-2\",\"entries\":[{\"tweet_id\":\"300\",\"sort_index\":null,\"pending\":\"add\"}]}", __LINE__);
    CHECK(cs_collections(store, &result, NULL) == CS_OK && has(result, "\"pending\":\"create\",\"gone\":false,\"entries\":1}"));
    cs_free(result);
    status = cs_store_outbox(store, "waiting", &result, &error);
    answered(status, result, error, "\"op\":\"create\",\"collection_id\":\"local-1\",\"tweet_id\":null,\"state\":\"pending\"", __LINE__);
    cs_observation *watching = NULL;
    CHECK(cs_observe_entries(store, "local-2", noop, NULL, &watching, &error) == CS_OK && watching != NULL);
    CHECK(cs_observation_cancel(watching, &error) == CS_OK);

    /* Destroyed before its create was sent: dropped with its ops, nothing to send. */
    status = cs_collection_destroy(store, "local-2", &result, &error);
    answered(status, result, error, "{\"queued\":[],\"dropped\":\"local-2\"}", __LINE__);
    CHECK(cs_collections(store, &result, NULL) == CS_OK && has(result, "\"local-1\"") && !has(result, "\"local-2\""));
    cs_free(result);
    status = cs_store_status(store, &result, &error);
    answered(status, result, error, "{\"pending\":2,\"in_flight\":0,\"failed\":0", __LINE__);   /* the creates of local-1 and 3 */
    /* Discarding a create (op 3, of local-3) drops its collection too. */
    const int64_t create3[] = {3};
    status = cs_store_discard(store, create3, 1, &result, &error);
    answered(status, result, error, "{\"discarded\":[3]}", __LINE__);
    CHECK(cs_collections(store, &result, NULL) == CS_OK && has(result, "\"local-1\"") && !has(result, "\"local-3\""));
    cs_free(result);

    /* Bad input: CS_USAGE and a message, nothing written. */
    const char bad_utf8[] = {'T', 'r', (char)0xc3, (char)0x28, 0};
    const char bad_id_utf8[] = {'l', 'o', 'c', 'a', 'l', '-', (char)0xff, 0};
    char *before = listing(store), *after = NULL;
    char *status_before = NULL;
    CHECK(cs_store_status(store, &status_before, NULL) == CS_OK);
    cs_observation *observation = NULL;

    status = cs_collection_create(NULL, "Trip", NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, NULL, NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, bad_utf8, NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", bad_utf8, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, bad_utf8, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, NULL, bad_utf8, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "", NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, n26, NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", d161, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, "ftp://example.com", NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, "https://exa mple.com", NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, "https://", NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, NULL, "newest_first", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, NULL, "", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create(store, "Trip", NULL, NULL, "TWEET_CHRON", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_create((cs_store *)(uintptr_t)987654321, "Trip", NULL, NULL, NULL, &result, &error);
    refused(status, CS_USAGE, result, error, __LINE__);

    status = cs_collection_update(NULL, "local-1", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, NULL, "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, bad_id_utf8, "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "Trip", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-0", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-99", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", bad_utf8, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", NULL, bad_utf8, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", NULL, NULL, bad_utf8, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", "", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", n26, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", NULL, d161, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", NULL, NULL, "mailto:me@example.com", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    /* A valid field with a bad one: all refused, the valid one not written either. */
    status = cs_collection_update(store, "local-1", "Fine", NULL, "javascript:alert(1)", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-2", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);   /* dropped */
    status = cs_collection_update(store, "custom-5", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);   /* metadata not known */

    status = cs_collection_destroy(NULL, "local-1", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, bad_id_utf8, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, "custom-", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, "local-01", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, "local-99", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, "local-2", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);   /* dropped */

    status = cs_collections(NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collections((cs_store *)(uintptr_t)987654321, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);

    status = cs_observe_collections(NULL, noop, NULL, &observation, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(observation == NULL);
    status = cs_observe_collections(store, NULL, NULL, &observation, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(observation == NULL);
    status = cs_observe_collections(store, noop, NULL, NULL, &error); refused(status, CS_USAGE, NULL, error, __LINE__);

    /* The calls that were there before refuse a local id this database never made, or a dropped one. */
    status = cs_store_add(store, "local-99", tweets, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_remove(store, "local-99", tweets, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_add(store, "local-2", tweets, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_entries(store, "local-99", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_entries(store, "local-2", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_observe_entries(store, "local-99", noop, NULL, &observation, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(observation == NULL);
    status = cs_observe_entries(store, "local-2", noop, NULL, &observation, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(observation == NULL);

    /* Nothing written. */
    after = listing(store);
    CHECK(before != NULL && after != NULL && strcmp(before, after) == 0);
    cs_free(after);
    CHECK(cs_store_status(store, &after, NULL) == CS_OK && status_before != NULL && strcmp(status_before, after) == 0);
    cs_free(after);
    cs_free(status_before);
    cs_free(before);

    /* A closed handle. */
    CHECK(cs_store_close(store, &error) == CS_OK);
    status = cs_collection_create(store, "Trip", NULL, NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_update(store, "local-1", "New", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, "local-1", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collections(store, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_observe_collections(store, noop, NULL, &observation, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(observation == NULL);
}

/* ---- Against the API ------------------------------------------------------------------------- */

static seen listed, view, later;

static void synced(const char *path) {
    char *result = NULL, *error = NULL;
    cs_store *store = NULL;
    cs_engine *engine = NULL;
    cs_observation *watching_list = NULL, *watching_view = NULL;
    cs_status status;
    reset(&listed); reset(&view); reset(&later);

    CHECK(cs_store_open(path, NULL, &store, &error) == CS_OK);
    CHECK(cs_observe_collections(store, remember, &listed, &watching_list, &error) == CS_OK && watching_list != NULL);
    CHECK(until_seen(&listed, "{\"collections\":[]}", 0));   /* the current value first */

    /* Made, filled and renamed offline. */
    status = cs_collection_create(store, "Trip", "Photos of the trip", NULL, "tweet_chron", &result, &error);
    answered(status, result, error, "\"op\":\"create\",\"collection_id\":\"local-1\"", __LINE__);
    CHECK(until_seen(&listed, "{\"id\":\"local-1\",\"local_id\":\"local-1\",\"name\":\"Trip\"", 0));
    CHECK(cs_observe_entries(store, "local-1", remember, &view, &watching_view, &error) == CS_OK);
    CHECK(until_seen(&view, "{\"collection_id\":\"local-1\",\"entries\":[]}", 0));
    const char *tweets[] = {"201", "202"};
    status = cs_store_add(store, "local-1", tweets, 2, &result, &error);
    answered(status, result, error, "\"op\":\"add\",\"collection_id\":\"local-1\",\"tweet_id\":\"202\"", __LINE__);
    status = cs_collection_update(store, "local-1", "Trip photos", NULL, NULL, &result, &error);
    answered(status, result, error, "\"op\":\"update\",\"collection_id\":\"local-1\"", __LINE__);
    CHECK(until_seen(&listed, "\"name\":\"Trip photos\"", 0));
    CHECK(until_seen(&view, "\"tweet_id\":\"202\"", 0));

    /* The API and credentials from the environment. A pull of a collection not yet created sends
     * nothing and succeeds. */
    CHECK(cs_engine_create(store, NULL, NULL, NULL, &engine, &error) == CS_OK && engine != NULL);
    status = cs_engine_pull(engine, "local-1", 30, &result, &error);
    answered(status, result, error, "{\"collection_id\":\"local-1\",\"entries\":2,\"remote_writes\":0,\"conflicts\":0}", __LINE__);

    /* The flush creates it, binds local-1 to the server's id, then sends the adds and the rename. */
    status = cs_engine_flush(engine, 60, 1, &result, &error);
    answered(status, result, error, "\"failed\":0,\"pending\":0,", __LINE__);
    char server[64] = "";
    CHECK(cs_collections(store, &result, &error) == CS_OK);
    CHECK(value_of(result, "id", server, sizeof server) && strncmp(server, "custom-", 7) == 0);
    char expected[512];
    snprintf(expected, sizeof expected,
             "{\"collections\":[{\"id\":\"%s\",\"local_id\":\"local-1\",\"name\":\"Trip photos\",\"description\":\"Photos of the trip\","
             "\"url\":\"\",\"timeline_order\":\"tweet_chron\",\"pending\":null,\"gone\":false,\"entries\":2}]}", server);
    if (!has(result, expected)) fprintf(stderr, "collections.c: expected %s\n  got %s\n", expected, result ? result : "nothing");
    CHECK(has(result, expected));
    cs_free(result);

    /* The observations saw it appear (local), then bound (server id, local id kept). */
    char bound[128], shown[128];
    snprintf(bound, sizeof bound, "{\"id\":\"%s\",\"local_id\":\"local-1\"", server);
    snprintf(shown, sizeof shown, "{\"collection_id\":\"%s\",\"entries\":[", server);
    CHECK(until_seen(&listed, bound, 0));
    CHECK(until_seen(&listed, "{\"id\":\"local-1\",\"local_id\":\"local-1\"", 1));
    CHECK(until_seen(&listed, "\"pending\":\"create\"", 1));
    CHECK(until_seen(&view, shown, 0) && until_seen(&view, "\"pending\":null", 0));

    /* The local id acts as the server id for good: the view, pull, edits show the server id. */
    status = cs_store_entries(store, "local-1", &result, &error);
    answered(status, result, error, shown, __LINE__);
    snprintf(expected, sizeof expected, "{\"collection_id\":\"%s\",\"entries\":2,", server);
    status = cs_engine_pull(engine, "local-1", 30, &result, &error);
    answered(status, result, error, expected, __LINE__);
    const char *more[] = {"203"};
    snprintf(expected, sizeof expected, "\"op\":\"add\",\"collection_id\":\"%s\",\"tweet_id\":\"203\"", server);
    status = cs_store_add(store, "local-1", more, 1, &result, &error);
    answered(status, result, error, expected, __LINE__);
    snprintf(expected, sizeof expected, "\"op\":\"update\",\"collection_id\":\"%s\"", server);
    status = cs_collection_update(store, "local-1", NULL, NULL, "https://example.com/trip", &result, &error);
    answered(status, result, error, expected, __LINE__);
    status = cs_engine_flush(engine, 60, 1, &result, &error);
    answered(status, result, error, "\"applied\":2,\"already_applied\":0,\"failed\":0,\"pending\":0,", __LINE__);
    status = cs_engine_pull(engine, "local-99", 30, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    /* The log shows a bound local id's lines under its server id. */
    snprintf(expected, sizeof expected, "\"event\":\"bound\",\"collection_id\":\"%s\"", server);
    CHECK(cs_store_log(store, 0, 100, &result, &error) == CS_OK && has(result, expected) && has(result, "\"event\":\"created\"")
          && !has(result, "\"collection_id\":\"local-1\""));
    cs_free(result);
    /* Observed by its local id once bound: the server id from the first document. */
    cs_observation *watching_later = NULL;
    CHECK(cs_observe_entries(store, "local-1", remember, &later, &watching_later, &error) == CS_OK);
    CHECK(until_seen(&later, shown, 0) && until_seen(&later, "\"tweet_id\":\"203\"", 0));
    CHECK(cs_observation_cancel(watching_later, &error) == CS_OK);
    pthread_mutex_lock(&later.lock);
    CHECK(!has(later.all, "local-1"));
    pthread_mutex_unlock(&later.lock);
    status = cs_collections(store, &result, &error);
    answered(status, result, error, "\"url\":\"https://example.com/trip\",\"timeline_order\":\"tweet_chron\",\"pending\":null,\"gone\":false,\"entries\":3}", __LINE__);

    /* A second collection, created, then destroyed: listed with pending destroy until the
     * destroy is applied, then not at all. */
    status = cs_collection_create(store, "Scratch", NULL, NULL, NULL, &result, &error);
    answered(status, result, error, "\"collection_id\":\"local-2\"", __LINE__);
    status = cs_engine_flush(engine, 60, 1, &result, &error);
    answered(status, result, error, "\"applied\":1,", __LINE__);
    char scratch[64] = "";
    CHECK(cs_collections(store, &result, NULL) == CS_OK);
    const char *second = result ? strstr(result, "},{") : NULL;
    CHECK(second != NULL && value_of(second, "id", scratch, sizeof scratch) && strncmp(scratch, "custom-", 7) == 0);
    CHECK(has(second, "\"local_id\":\"local-2\",\"name\":\"Scratch\""));
    cs_free(result);
    snprintf(expected, sizeof expected, "{\"queued\":[{\"id\":8,\"op\":\"destroy\",\"collection_id\":\"%s\",\"tweet_id\":null}]}", scratch);
    status = cs_collection_destroy(store, "local-2", &result, &error);
    answered(status, result, error, expected, __LINE__);
    snprintf(expected, sizeof expected, "\"id\":\"%s\",\"local_id\":\"local-2\",\"name\":\"Scratch\",\"description\":\"\",\"url\":\"\","
             "\"timeline_order\":\"curation_reverse_chron\",\"pending\":\"destroy\"", scratch);
    status = cs_collections(store, &result, &error);
    answered(status, result, error, expected, __LINE__);
    /* The observer sees the pending destroy before the flush: it is the store's value until then
     * (an observer gets the newest value, not every one, so it is awaited here, not after). */
    CHECK(until_seen(&listed, "\"pending\":\"destroy\"", 0));
    status = cs_store_entries(store, "local-2", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_observe_entries(store, "local-2", noop, NULL, &watching_later, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    status = cs_collection_update(store, "local-2", "Scratched", NULL, NULL, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_collection_destroy(store, scratch, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_engine_flush(engine, 60, 1, &result, &error);
    answered(status, result, error, "\"applied\":1,", __LINE__);
    CHECK(cs_collections(store, &result, NULL) == CS_OK && !has(result, scratch) && has(result, server));
    /* The observer comes to the same list: the bound collection, no Scratch. */
    CHECK(result != NULL && !has(result, "Scratch") && until_seen(&listed, result, 0));
    cs_free(result);

    CHECK(cs_observation_cancel(watching_view, &error) == CS_OK);
    CHECK(cs_observation_cancel(watching_list, &error) == CS_OK);
    status = cs_observation_cancel(watching_list, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(cs_engine_destroy(engine, &error) == CS_OK);
    CHECK(cs_store_close(store, &error) == CS_OK);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: collections OFFLINE_DATABASE SYNC_DATABASE\n"); return 64; }
    offline(argv[1]);
    synced(argv[2]);
    if (failures == 0) printf("ok\n");
    return failures == 0 ? 0 : 1;
}
