/*
 * Destroys many connected lines and says how long it took, used by tests/tests/c_host.rs.
 *
 *   destroy_lines PLUGIN_PATH PORT COUNT
 *
 * Creates COUNT lines to 127.0.0.1:PORT (client ids "destroy-PID-I", one station "destroy/I" with
 * an IN_DATA tag each), starts them, waits until every one is connected, then destroys them one
 * after another as a kernel does when it stops. Prints "client destroy-PID-I" for each line,
 * "connected COUNT" and "destroyed COUNT lines in SECONDS s", and exits 0; exits 1 on any error
 * or when the lines are not all connected within 20 seconds.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_line.h"
#include "util.h"

#define DEADLINE_SECONDS 20.0
#define MAX_LINES 1000
#define EVENT_BATCH 32

static int failed(const char *call, int index, MqlStatus status, const MqlError *err)
{
    fprintf(stderr, "destroy_lines: %s of line %d failed with status %d: %.*s\n", call, index,
            (int)status, (int)err->len, (const char *)err->buf);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PLUGIN_PATH PORT COUNT\n", argv[0]);
        return 1;
    }
    const char *port = argv[2];
    int count = atoi(argv[3]);
    if (count < 1 || count > MAX_LINES) {
        fprintf(stderr, "destroy_lines: COUNT must be 1..%d\n", MAX_LINES);
        return 1;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    void *sym = lib != NULL ? dlsym(lib, "mql_plugin_entry") : NULL;
    if (sym == NULL) {
        fprintf(stderr, "destroy_lines: cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    MqlEntryFn entry;
    memcpy(&entry, &sym, sizeof entry);
    const MqlPluginApi *api = entry(MQL_ABI_MAJOR, MQL_ABI_MINOR);
    if (api == NULL || api->size < offsetof(MqlPluginApi, line_destroy) + sizeof api->line_destroy) {
        fprintf(stderr, "destroy_lines: the plugin does not serve this ABI\n");
        return 1;
    }

    uint8_t err_buf[1024];
    MqlError err = { err_buf, sizeof err_buf, 0 };
    static MqlLine *lines[MAX_LINES];
    static int connected[MAX_LINES];
    char client_id[64], topic[64];

    for (int i = 0; i < count; i++) {
        snprintf(client_id, sizeof client_id, "destroy-%ld-%d", (long)getpid(), i);
        snprintf(topic, sizeof topic, "destroy/%d", i);
        MqlParam params[4] = {
            { str("host"), str("127.0.0.1") },
            { str("port"), str(port) },
            { str("client_id"), str(client_id) },
            { str("topic_filter"), str(topic) },
        };
        MqlLineConfig config;
        memset(&config, 0, sizeof config);
        config.size = sizeof config;
        config.name = str(client_id);
        config.params = params;
        config.param_count = 4;
        MqlStatus st = api->line_create(&config, &lines[i], &err);
        if (st != MQL_OK)
            return failed("line_create", i, st, &err);
        st = api->line_add_station(lines[i], 1, str("st"), str(topic), NULL, 0, &err);
        if (st != MQL_OK)
            return failed("line_add_station", i, st, &err);
        st = api->line_add_tag(lines[i], 1, 10, str("data"), str("IN_DATA"), MQL_TYPE_TXTI, NULL,
                               &err);
        if (st != MQL_OK)
            return failed("line_add_tag", i, st, &err);
        st = api->line_start(lines[i], &err);
        if (st != MQL_OK)
            return failed("line_start", i, st, &err);
        printf("client %s\n", client_id);
    }

    /* Polled without the notify callback: this program measures stopping, not receiving. */
    MqlEvent events[EVENT_BATCH];
    int up = 0;
    double deadline = now_seconds() + DEADLINE_SECONDS;
    while (up < count) {
        if (now_seconds() >= deadline) {
            fprintf(stderr, "destroy_lines: %d of %d lines connected within %.0f s\n", up, count,
                    DEADLINE_SECONDS);
            return 1;
        }
        for (int i = 0; i < count; i++) {
            size_t n = 0;
            MqlStatus st = api->line_poll_events(lines[i], events, sizeof(MqlEvent), EVENT_BATCH,
                                                 &n, &err);
            if (st != MQL_OK)
                return failed("line_poll_events", i, st, &err);
            for (size_t k = 0; k < n; k++) {
                if (events[k].kind == MQL_EVENT_LINE_STATE && events[k].code == MQL_LINE_CONNECTED &&
                    !connected[i]) {
                    connected[i] = 1;
                    up++;
                }
            }
        }
        struct timespec pause = { 0, 5000000L };
        nanosleep(&pause, NULL);
    }
    printf("connected %d\n", count);
    fflush(stdout);

    double start = now_seconds();
    for (int i = 0; i < count; i++)
        api->line_destroy(lines[i]);
    double took = now_seconds() - start;
    printf("destroyed %d lines in %.3f s\n", count, took);
    return 0;
}
