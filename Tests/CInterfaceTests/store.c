/*
 * The C interface from C, as an application uses it: edit offline, read the view, the status,
 * the outbox and the log, retry, discard, prune; and every kind of bad input, each answered with
 * its status and a message, nothing written. Built by CInterfaceTests with the system cc from
 * the installed header only; exits 0 when every check holds, else prints the first that failed.
 *
 *     store DATABASE
 */
#include <collectionsync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

#define CHECK(condition) do { \
    if (!(condition)) { fprintf(stderr, "store.c:%d: check failed: %s\n", __LINE__, #condition); failures++; } \
} while (0)

/* Whether `text` contains `part` (NULL never does). */
static int has(const char *text, const char *part) { return text != NULL && strstr(text, part) != NULL; }

/* Expects `status` with a message, and no result. */
static void refused(cs_status status, cs_status expected, char *result, char *error, int line) {
    if (status != expected || error == NULL || error[0] == '\0' || result != NULL) {
        fprintf(stderr, "store.c:%d: expected status %d with a message, got %d (%s)\n", line, (int)expected, (int)status,
                error ? error : "no message");
        failures++;
    }
    cs_free(result);
    cs_free(error);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: store DATABASE\n"); return 64; }
    char *result = NULL, *error = NULL;
    cs_store *store = NULL;

    CHECK(cs_abi_version() == CS_ABI_VERSION);
    CHECK(strlen(cs_version()) > 0);

    cs_store_options options = {2000, 0};
    CHECK(cs_store_open(argv[1], &options, &store, &error) == CS_OK && store != NULL && error == NULL);

    /* Edit offline: one transaction each, the view changes at once. */
    const char *removed[] = {"20", "21"};
    CHECK(cs_store_remove(store, "custom-1", removed, 2, &result, &error) == CS_OK);
    CHECK(has(result, "{\"queued\":[{\"id\":1,\"op\":\"remove\",\"collection_id\":\"custom-1\",\"tweet_id\":\"20\"}"));
    cs_free(result);
    const char *added[] = {"30"};
    CHECK(cs_store_add(store, "custom-1", added, 1, NULL, &error) == CS_OK && error == NULL);
    CHECK(cs_store_entries(store, "custom-1", &result, NULL) == CS_OK);
    CHECK(has(result, "\"tweet_id\":\"30\"") && has(result, "\"pending\":\"add\"") && !has(result, "\"20\""));
    cs_free(result);
    CHECK(cs_store_status(store, &result, NULL) == CS_OK);
    CHECK(has(result, "\"pending\":3,\"in_flight\":0,\"failed\":0"));
    cs_free(result);
    CHECK(cs_store_outbox(store, "waiting", &result, NULL) == CS_OK);
    CHECK(has(result, "\"state\":\"pending\"") && has(result, "\"attempts\":0"));
    cs_free(result);
    CHECK(cs_store_log(store, 0, 10, &result, NULL) == CS_OK && has(result, "\"event\":\"local_write\""));
    cs_free(result);
    CHECK(cs_store_retry(store, NULL, 0, &result, NULL) == CS_OK && has(result, "{\"retried\":[]}"));
    cs_free(result);
    const int64_t discard[] = {3};
    CHECK(cs_store_discard(store, discard, 1, &result, NULL) == CS_OK && has(result, "{\"discarded\":[3]}"));
    cs_free(result);
    CHECK(cs_store_prune(store, 0, 1, &result, NULL) == CS_OK && has(result, "{\"pruned\":"));
    cs_free(result);

    /* Bad input: a status and a message, nothing written. */
    const char *bad_tweet[] = {"22", "not-a-tweet"};
    const char *null_tweet[] = {NULL};
    const char invalid_utf8[] = {'c', 'u', 's', 't', (char)0xff, 0};
    const int64_t bad_op[] = {0};
    const int64_t unknown_op[] = {999};
    cs_status status;
    cs_store *other = NULL;
    status = cs_store_open(NULL, NULL, &other, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    CHECK(other == NULL);
    cs_store_options negative = {-1, 0};
    status = cs_store_open("app.sqlite", &negative, &other, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    status = cs_store_open("app.sqlite", NULL, NULL, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    status = cs_store_remove(store, "custom-1", bad_tweet, 2, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_remove(store, "custom-1", null_tweet, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_remove(store, "custom-1", NULL, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_remove(store, invalid_utf8, removed, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_remove(store, "bad id", removed, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_outbox(store, "everything", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_log(store, 0, 0, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_retry(store, bad_op, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_discard(store, unknown_op, 1, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_prune(store, -1, 0, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_entries(NULL, "custom-1", &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    CHECK(cs_store_status(store, &result, NULL) == CS_OK && has(result, "\"pending\":2,"));   /* nothing written */
    cs_free(result);

    /* A closed handle, and a second close. */
    CHECK(cs_store_close(store, &error) == CS_OK && error == NULL);
    status = cs_store_status(store, &result, &error); refused(status, CS_USAGE, result, error, __LINE__);
    status = cs_store_close(store, &error); refused(status, CS_USAGE, NULL, error, __LINE__);
    cs_free(NULL);

    /* A file that is not a database: the database's status, untouched. */
    FILE *junk = fopen("not-a-database.sqlite", "w");
    if (junk) { fputs("this is not SQLite\n", junk); fclose(junk); }
    status = cs_store_open("not-a-database.sqlite", NULL, &store, &error);
    refused(status, CS_IOERR, NULL, error, __LINE__);
    CHECK(store == NULL);

    if (failures == 0) printf("ok\n");
    return failures == 0 ? 0 : 1;
}
