#include <collectionsync.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: example DATABASE COLLECTION_ID\n"); return 64; }
    cs_store *store = NULL;
    cs_engine *engine = NULL;
    char *result = NULL, *error = NULL;
    cs_status status = cs_store_open(argv[1], NULL, &store, &error);
    if (status != CS_OK) { fprintf(stderr, "%s\n", error); cs_free(error); return status; }

    const char *tweets[] = {"102"};                       /* offline: the view changes at once */
    cs_store_remove(store, argv[2], tweets, 1, NULL, NULL);
    cs_store_entries(store, argv[2], &result, NULL);
    printf("%s\n", result);
    cs_free(result);

    /* The API's base URL and credentials as syncctl reads them (environment, credentials file). */
    status = cs_engine_create(store, NULL, NULL, NULL, &engine, &error);
    if (status == CS_OK) status = cs_engine_flush(engine, 60, 0, &result, &error);
    if (status == CS_OK) printf("%s\n", result);
    else fprintf(stderr, "flush: %s\n", error);
    cs_free(result);
    cs_free(error);
    cs_engine_destroy(engine, NULL);
    cs_store_close(store, NULL);
    return status;
}
