/*
 * The C interface from many threads at once: four threads edit one store through one handle, one
 * reads its status, one opens and closes handles of its own, one uses a closed handle, while a
 * callback observes the view. Every edit lands once; nothing crashes. Built by CInterfaceTests
 * from the header alone, with -pthread.
 *
 *     threads DATABASE
 */
#include <collectionsync.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITERS 4
#define EDITS 100

static int failures = 0;
static pthread_mutex_t failing = PTHREAD_MUTEX_INITIALIZER;
static cs_store *store = NULL;
static const char *path = NULL;

static void fail(const char *what, int status) {
    pthread_mutex_lock(&failing);
    fprintf(stderr, "threads.c: %s: status %d\n", what, status);
    failures++;
    pthread_mutex_unlock(&failing);
}

static void *writer(void *argument) {
    long index = (long)argument;
    for (int i = 0; i < EDITS; i++) {
        char id[32];
        snprintf(id, sizeof id, "%ld", 1000000L * (index + 1) + i);
        const char *tweets[] = {id};
        char *error = NULL;
        cs_status status = cs_store_add(store, "custom-7", tweets, 1, NULL, &error);
        if (status != CS_OK) fail(error ? error : "add", status);
        cs_free(error);
    }
    return NULL;
}

static void *reader(void *unused) {
    (void)unused;
    for (int i = 0; i < 200; i++) {
        char *result = NULL;
        cs_status status = cs_store_status(store, &result, NULL);
        if (status != CS_OK || result == NULL) fail("status", status);
        cs_free(result);
    }
    return NULL;
}

static void *opener(void *unused) {
    (void)unused;
    for (int i = 0; i < 20; i++) {
        cs_store *mine = NULL;
        cs_status status = cs_store_open(path, NULL, &mine, NULL);
        if (status != CS_OK) { fail("open", status); continue; }
        char *result = NULL;
        if (cs_store_entries(mine, "custom-7", &result, NULL) != CS_OK) fail("entries", -1);
        cs_free(result);
        if (cs_store_close(mine, NULL) != CS_OK) fail("close", -1);
        if (cs_store_close(mine, NULL) != CS_USAGE) fail("second close", -1);
    }
    return NULL;
}

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int views = 0;
static void observed(void *context, const char *json) {
    (void)context;
    (void)json;
    pthread_mutex_lock(&seen_lock);
    views++;
    pthread_mutex_unlock(&seen_lock);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: threads DATABASE\n"); return 64; }
    path = argv[1];
    if (cs_store_open(path, NULL, &store, NULL) != CS_OK) return 1;
    cs_observation *observation = NULL;
    if (cs_observe_entries(store, "custom-7", observed, NULL, &observation, NULL) != CS_OK) return 1;

    pthread_t threads[WRITERS + 2];
    for (long i = 0; i < WRITERS; i++) pthread_create(&threads[i], NULL, writer, (void *)i);
    pthread_create(&threads[WRITERS], NULL, reader, NULL);
    pthread_create(&threads[WRITERS + 1], NULL, opener, NULL);
    for (int i = 0; i < WRITERS + 2; i++) pthread_join(threads[i], NULL);

    if (cs_observation_cancel(observation, NULL) != CS_OK) fail("cancel", -1);
    char *result = NULL;
    if (cs_store_status(store, &result, NULL) != CS_OK) fail("status", -1);
    char expected[64];
    snprintf(expected, sizeof expected, "\"pending\":%d,", WRITERS * EDITS);
    if (result == NULL || strstr(result, expected) == NULL) fail(result ? result : "no status", -1);
    cs_free(result);
    if (views < 1) fail("no view observed", -1);
    if (cs_store_close(store, NULL) != CS_OK) fail("close", -1);
    if (failures == 0) printf("ok\n");
    return failures == 0 ? 0 : 1;
}
