/*
 * B10's C side (Benchmarks/compare): the engine through the C interface, timed in-process like
 * syncbench's Swift side, one JSON object on stdout.
 *
 *     b10 enqueue DATABASE COUNT   # COUNT removes, one call (one transaction) each: ops_per_s
 *     b10 flush DATABASE           # flush the queue (base URL and credentials from the environment): seconds
 */
#include <collectionsync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int fail(const char *what, char *error) {
    fprintf(stderr, "b10: %s: %s\n", what, error ? error : "?");
    cs_free(error);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: b10 enqueue DATABASE COUNT | b10 flush DATABASE\n"); return 64; }
    cs_store *store = NULL;
    char *error = NULL, *result = NULL;
    if (cs_store_open(argv[2], NULL, &store, &error) != CS_OK) return fail("open", error);
    if (strcmp(argv[1], "enqueue") == 0 && argc == 4) {
        long count = atol(argv[3]);
        char id[32];
        const char *tweets[1] = {id};
        double start = now();
        for (long i = 0; i < count; i++) {
            snprintf(id, sizeof id, "%ld", 100000000L + i);   /* syncbench's ids for collection 0 */
            if (cs_store_remove(store, "custom-1000", tweets, 1, NULL, &error) != CS_OK) return fail("remove", error);
        }
        double seconds = now() - start;
        printf("{\"ops\":%ld,\"seconds\":%.6f,\"ops_per_s\":%.1f}\n", count, seconds, (double)count / seconds);
    } else if (strcmp(argv[1], "flush") == 0) {
        cs_engine *engine = NULL;
        if (cs_engine_create(store, NULL, NULL, NULL, &engine, &error) != CS_OK) return fail("engine", error);
        double start = now();
        if (cs_engine_flush(engine, 0, 0, &result, &error) != CS_OK) return fail("flush", error);
        double seconds = now() - start;
        result[strlen(result) - 1] = '\0';   /* the flush document, with the time added */
        printf("%s,\"seconds\":%.6f}\n", result, seconds);
        cs_free(result);
        cs_engine_destroy(engine, NULL);
    } else {
        fprintf(stderr, "b10: unknown mode %s\n", argv[1]);
        return 64;
    }
    cs_store_close(store, NULL);
    return 0;
}
