/*
 * The sync worker from C: observe a collection's view, its queue and the engine's events while
 * the library pulls, edits, flushes through an outage (begun and ended through the mock's admin
 * routes), and watches in the background. Built by CInterfaceTests from the header alone, with
 * -pthread.
 *
 *     sync DATABASE COLLECTION_ID DOWN_BASE_URL ADMIN_URL
 *
 * The API's base URL and credentials come from the environment, as syncctl reads them;
 * DOWN_BASE_URL is a base URL where nothing listens, ADMIN_URL the mock's admin routes on a port
 * that stays up during an outage (http://127.0.0.1:PORT/__mock).
 */
#include <collectionsync.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;

#define CHECK(condition) do { \
    if (!(condition)) { fprintf(stderr, "sync.c:%d: check failed: %s\n", __LINE__, #condition); failures++; } \
} while (0)

/* What a callback saw: how many documents, and the last one. Callbacks run on library threads. */
typedef struct seen {
    pthread_mutex_t lock;
    int count;
    char last[65536];
    char all[65536];
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
    fprintf(stderr, "sync.c: timed out waiting for %s; last seen: %s\n", part, s->last);
    return 0;
}

/* Waits (up to 30 s) until more than `count` documents were seen. */
static int until_more(seen *s, int count) {
    struct timespec pause = {0, 2000000};
    for (int i = 0; i < 15000; i++) {
        pthread_mutex_lock(&s->lock);
        int more = s->count > count;
        pthread_mutex_unlock(&s->lock);
        if (more) return 1;
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "sync.c: timed out waiting for a document after %d\n", count);
    return 0;
}

static void reset(seen *s) {
    pthread_mutex_init(&s->lock, NULL);
    s->count = 0;
    s->last[0] = '\0';
    s->all[0] = '\0';
}

static seen view, queue, events;

/* POSTs `body` to ADMIN_URL/`route` (a loopback http URL); 1 when the answer is 200. */
static int admin(const char *admin_url, const char *route, const char *body) {
    int port = 0;
    if (sscanf(admin_url, "http://127.0.0.1:%d/", &port) != 1) return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, sizeof address) != 0) return 0;
    char request[512], answer[256] = {0};
    int length = snprintf(request, sizeof request,
                          "POST /__mock/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", route, strlen(body), body);
    int ok = write(fd, request, (size_t)length) == length && read(fd, answer, sizeof answer - 1) > 0
        && strncmp(answer, "HTTP/1.1 200", 12) == 0;
    close(fd);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: sync DATABASE COLLECTION_ID DOWN_BASE_URL ADMIN_URL\n"); return 64; }
    const char *collection = argv[2];
    char *result = NULL, *error = NULL;
    cs_store *store = NULL;
    cs_engine *engine = NULL, *down = NULL;
    cs_observation *watching_view = NULL, *watching_queue = NULL, *watching_events = NULL;
    reset(&view); reset(&queue); reset(&events);

    CHECK(cs_store_open(argv[1], NULL, &store, &error) == CS_OK);
    CHECK(cs_observe_entries(store, collection, remember, &view, &watching_view, &error) == CS_OK);
    CHECK(cs_observe_status(store, remember, &queue, &watching_queue, &error) == CS_OK);
    CHECK(until_seen(&view, "\"entries\":[]", 0));   /* the current value first */

    /* The API and credentials from the environment; the defaults for the rest. */
    CHECK(cs_engine_create(store, NULL, NULL, NULL, &engine, &error) == CS_OK && engine != NULL);
    CHECK(cs_engine_events(engine, remember, &events, &watching_events, &error) == CS_OK);
    CHECK(cs_engine_pull(engine, collection, 30, &result, &error) == CS_OK);
    CHECK(result != NULL && strstr(result, "\"entries\":3") != NULL);
    cs_free(result);
    CHECK(until_seen(&view, "\"tweet_id\":\"102\"", 0));

    /* An edit offline: the view shows it at once. */
    const char *removed[] = {"102"};
    pthread_mutex_lock(&view.lock);
    int before = view.count;
    pthread_mutex_unlock(&view.lock);
    CHECK(cs_store_remove(store, collection, removed, 1, NULL, &error) == CS_OK);
    CHECK(until_more(&view, before));
    pthread_mutex_lock(&view.lock);
    CHECK(strstr(view.last, "\"101\"") != NULL && strstr(view.last, "\"102\"") == NULL);
    pthread_mutex_unlock(&view.lock);
    CHECK(until_seen(&queue, "\"pending\":1,", 0));

    /* An outage: nothing listens at the down base URL. 69, the op kept. */
    cs_credentials credentials = {getenv("TWITTER_CONSUMER_KEY"), getenv("TWITTER_CONSUMER_SECRET"),
                                  getenv("TWITTER_ACCESS_TOKEN"), getenv("TWITTER_ACCESS_TOKEN_SECRET"), NULL};
    cs_engine_options options = {10, 1};
    CHECK(cs_engine_create(store, argv[3], &credentials, &options, &down, &error) == CS_OK);
    cs_status status = cs_engine_flush(down, 5, 0, &result, &error);
    CHECK(status == CS_UNAVAILABLE && error != NULL && result != NULL && strstr(result, "\"pending\":1,") != NULL);
    CHECK(result != NULL && strstr(result, "\"error\":{\"exit_code\":69") != NULL);
    cs_free(result);
    cs_free(error);
    CHECK(cs_engine_destroy(down, &error) == CS_OK);

    /* An outage of the API itself, through the mock's admin routes, and a new edit: 69, both ops
     * kept (the first is not due yet: backing off); then the API is back. */
    CHECK(admin(argv[4], "outage", "{\"on\":true}"));
    const char *also[] = {"103"};
    CHECK(cs_store_remove(store, collection, also, 1, NULL, &error) == CS_OK);
    status = cs_engine_flush(engine, 5, 0, &result, &error);
    CHECK(status == CS_UNAVAILABLE && result != NULL && strstr(result, "\"pending\":2,") != NULL);
    cs_free(result);
    cs_free(error);
    CHECK(admin(argv[4], "outage", "{\"on\":false}"));

    /* The API is back: the flush (waiting out the backoff) applies it, and the event says so. */
    status = cs_engine_flush(engine, 30, 1, &result, &error);
    CHECK(status == CS_OK && result != NULL && strstr(result, "\"applied\":2,") != NULL);
    cs_free(result);
    CHECK(until_seen(&events, "\"event\":\"applied\"", 1) && until_seen(&events, "\"tweet_id\":\"102\"", 1));
    CHECK(until_seen(&queue, "\"pending\":0,", 0));

    /* The watch in the background: an add reaches the server without a call to flush. */
    CHECK(cs_engine_watch_start(engine, &error) == CS_OK);
    status = cs_engine_watch_start(engine, &error);
    CHECK(status == CS_USAGE);
    cs_free(error);
    const char *added[] = {"104"};
    CHECK(cs_store_add(store, collection, added, 1, NULL, &error) == CS_OK);
    CHECK(until_seen(&events, "\"tweet_id\":\"104\"", 1));
    CHECK(until_seen(&queue, "\"pending\":0,", 0));
    CHECK(cs_engine_watch_stop(engine, &error) == CS_OK);

    /* Unregistering returns after the last callback: nothing is delivered afterwards. */
    CHECK(cs_observation_cancel(watching_view, &error) == CS_OK);
    pthread_mutex_lock(&view.lock);
    int delivered = view.count;
    pthread_mutex_unlock(&view.lock);
    const char *more[] = {"105"};
    CHECK(cs_store_add(store, collection, more, 1, NULL, &error) == CS_OK);
    CHECK(until_seen(&queue, "\"pending\":1,", 0));
    CHECK(view.count == delivered);
    status = cs_observation_cancel(watching_view, &error);
    CHECK(status == CS_USAGE);
    cs_free(error);
    CHECK(cs_observation_cancel(watching_queue, &error) == CS_OK);
    CHECK(cs_observation_cancel(watching_events, &error) == CS_OK);

    /* Bad input to the engine calls: a status and a message. */
    status = cs_engine_pull(engine, "not a collection", 0, &result, &error);
    CHECK(status == CS_USAGE && result == NULL && error != NULL);
    cs_free(error);
    status = cs_engine_flush(engine, -1, 0, &result, &error);
    CHECK(status == CS_USAGE && result == NULL);
    cs_free(error);
    cs_engine_options bad = {101, 0};
    status = cs_engine_create(store, NULL, NULL, &bad, &down, &error);
    CHECK(status == CS_USAGE && down == NULL);
    cs_free(error);
    cs_credentials partial = {"key", NULL, NULL, NULL, NULL};
    status = cs_engine_create(store, NULL, &partial, NULL, &down, &error);
    CHECK(status == CS_CONFIG && error != NULL && strstr(error, "consumer_secret") != NULL);
    cs_free(error);
    status = cs_engine_create(store, "http://example.com/1.1", NULL, NULL, &down, &error);
    CHECK(status == CS_CONFIG);
    cs_free(error);
    status = cs_engine_flush((cs_engine *)store, 0, 0, &result, &error);
    CHECK(status == CS_USAGE);   /* a store's handle is not an engine's */
    cs_free(error);

    CHECK(cs_engine_destroy(engine, &error) == CS_OK);
    status = cs_engine_destroy(engine, &error);
    CHECK(status == CS_USAGE);
    cs_free(error);
    CHECK(cs_store_close(store, &error) == CS_OK);

    if (failures == 0) printf("ok\n");
    return failures == 0 ? 0 : 1;
}
