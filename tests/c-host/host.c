/*
 * A minimal C host of the mqtt-line plugin, used by tests/tests/c_host.rs.
 *
 *   host PLUGIN_PATH PORT TOPIC [COUNT]
 *
 * Loads the plugin with dlopen, negotiates the ABI, creates a line to 127.0.0.1:PORT subscribed to
 * TOPIC with one station (address TOPIC) holding one IN_DATA tag, and starts it. It prints
 * "connected" when the line is connected, then "value <text>" for each value of the tag. After
 * COUNT values (default 1) it reads the counters (line_stats, line_station_stats, ABI 1.2) and
 * prints them on one line:
 *
 *   stats state=S received=N bytes=B unrouted=U last_message=yes|no station_state=S
 *   station_received=N station_dropped=D station_last_message=yes|no
 *
 * and exits 0. It exits 1 on any error or when nothing arrived within 20 seconds.
 *
 * The plugin's notify callback only raises a flag; events are polled on the main thread when the
 * flag is raised, and every 10 ms regardless.
 */
#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqtt_line.h"
#include "util.h"

#define STATION_ID 1u
#define TAG_ID 10u
#define DEADLINE_SECONDS 20.0
#define POLL_PERIOD_SECONDS 0.010
#define EVENT_BATCH 16

/* Raised by the plugin's thread, cleared by ours. */
static int pending_events;

static void on_notify(void *user_data)
{
    int *flag = (int *)user_data;
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

static void sleep_millis(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Writes borrowed plugin text (not NUL-terminated; NULL when empty). */
static void put_str(FILE *f, MqlStr s)
{
    if (s.ptr != NULL && s.len > 0) {
        fwrite(s.ptr, 1, s.len, f);
    }
}

/* Reports a failed call with the plugin's message. */
static int failed(const char *call, MqlStatus status, const MqlError *err)
{
    size_t len = err->len <= err->cap ? err->len : err->cap;
    fprintf(stderr, "host: %s failed with status %d: ", call, (int)status);
    fwrite(err->buf, 1, len, stderr);
    fputc('\n', stderr);
    return 1;
}

/* Whether the table is large enough to hold the field ending at `end`. */
static int has_field(const MqlPluginApi *api, size_t end)
{
    return api->size >= end;
}

/* Reads the line's and the station's counters and prints them on one line; 0 on success. */
static int print_stats(const MqlPluginApi *api, MqlLine *line, MqlError *err)
{
    MqlLineStats ls;
    memset(&ls, 0, sizeof ls);
    ls.size = sizeof ls;
    MqlStatus status = api->line_stats(line, &ls, err);
    if (status != MQL_OK) {
        return failed("line_stats", status, err);
    }
    MqlStationStats ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    status = api->line_station_stats(line, STATION_ID, &ss, err);
    if (status != MQL_OK) {
        return failed("line_station_stats", status, err);
    }
    printf("stats state=%u received=%llu bytes=%llu unrouted=%llu last_message=%s "
           "station_state=%u station_received=%llu station_dropped=%llu "
           "station_last_message=%s\n",
           (unsigned)ls.state, (unsigned long long)ls.received,
           (unsigned long long)ls.bytes_received, (unsigned long long)ls.unrouted,
           ls.last_message_ns > 0 ? "yes" : "no", (unsigned)ss.state,
           (unsigned long long)ss.received, (unsigned long long)ss.dropped,
           ss.last_message_ns > 0 ? "yes" : "no");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s PLUGIN_PATH PORT TOPIC [COUNT]\n", argv[0]);
        return 1;
    }
    const char *plugin_path = argv[1];
    const char *port = argv[2];
    const char *topic = argv[3];
    long count_wanted = argc == 5 ? strtol(argv[4], NULL, 10) : 1;
    if (count_wanted < 1) {
        fprintf(stderr, "host: COUNT must be a positive number, not '%s'\n", argv[4]);
        return 1;
    }
    long values_seen = 0;

    void *lib = dlopen(plugin_path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "host: dlopen(%s): %s\n", plugin_path, dlerror());
        return 1;
    }
    void *sym = dlsym(lib, "mql_plugin_entry");
    if (sym == NULL) {
        fprintf(stderr, "host: dlsym(mql_plugin_entry): %s\n", dlerror());
        return 1;
    }
    /* ISO C has no conversion from object to function pointers; copy the bits (POSIX allows). */
    MqlEntryFn entry;
    memcpy(&entry, &sym, sizeof entry);

    const MqlPluginApi *api = entry(MQL_ABI_MAJOR, MQL_ABI_MINOR);
    if (api == NULL) {
        fprintf(stderr, "host: the plugin does not serve ABI %u.%u\n", (unsigned)MQL_ABI_MAJOR,
                (unsigned)MQL_ABI_MINOR);
        return 1;
    }
    if (api->abi_major != MQL_ABI_MAJOR) {
        fprintf(stderr, "host: the plugin answered with ABI major %u, expected %u\n",
                (unsigned)api->abi_major, (unsigned)MQL_ABI_MAJOR);
        return 1;
    }
    /* Every function this host calls must lie within the plugin's table (the last one is
     * line_station_stats, since ABI 1.2). */
    size_t needed = offsetof(MqlPluginApi, line_station_stats) + sizeof api->line_station_stats;
    if (!has_field(api, needed)) {
        fprintf(stderr, "host: the plugin's function table has %zu bytes, %zu needed\n", api->size,
                needed);
        return 1;
    }
    if (api->line_create == NULL || api->line_add_station == NULL || api->line_add_tag == NULL ||
        api->line_start == NULL || api->line_poll_events == NULL || api->line_destroy == NULL ||
        api->line_stats == NULL || api->line_station_stats == NULL) {
        fprintf(stderr, "host: the plugin's function table lacks a function this host needs\n");
        return 1;
    }
    fprintf(stderr, "host: loaded ");
    put_str(stderr, api->plugin_version);
    fprintf(stderr, " (ABI %u.%u, table %zu bytes)\n", (unsigned)api->abi_major,
            (unsigned)api->abi_minor, api->size);

    uint8_t err_buf[1024];
    MqlError err;
    err.buf = err_buf;
    err.cap = sizeof err_buf;
    err.len = 0;

    char client_id[64];
    snprintf(client_id, sizeof client_id, "c-host-%ld", (long)getpid());

    MqlParam params[4];
    params[0].key = str("host");
    params[0].value = str("127.0.0.1");
    params[1].key = str("port");
    params[1].value = str(port);
    params[2].key = str("topic_filter");
    params[2].value = str(topic);
    params[3].key = str("client_id");
    params[3].value = str(client_id);

    MqlLineConfig config;
    memset(&config, 0, sizeof config);
    config.size = sizeof config;
    config.name = str("c-host");
    config.params = params;
    config.param_count = sizeof params / sizeof params[0];
    config.notify = on_notify;
    config.notify_user_data = &pending_events;
    config.event_queue_capacity = 0;
    config.log_level = MQL_LOG_INFO;

    MqlLine *line = NULL;
    MqlStatus status = api->line_create(&config, &line, &err);
    if (status != MQL_OK) {
        return failed("line_create", status, &err);
    }
    status = api->line_add_station(line, STATION_ID, str("station"), str(topic), NULL, 0, &err);
    if (status != MQL_OK) {
        api->line_destroy(line);
        return failed("line_add_station", status, &err);
    }
    status = api->line_add_tag(line, STATION_ID, TAG_ID, str("data"), str("IN_DATA"),
                               MQL_TYPE_TXTI, NULL, &err);
    if (status != MQL_OK) {
        api->line_destroy(line);
        return failed("line_add_tag", status, &err);
    }
    status = api->line_start(line, &err);
    if (status != MQL_OK) {
        api->line_destroy(line);
        return failed("line_start", status, &err);
    }

    MqlEvent events[EVENT_BATCH];
    double deadline = now_seconds() + DEADLINE_SECONDS;
    double next_poll = now_seconds();
    for (;;) {
        double now = now_seconds();
        if (now >= deadline) {
            fprintf(stderr, "host: nothing received within %.0f seconds\n", DEADLINE_SECONDS);
            api->line_destroy(line);
            return 1;
        }
        int flagged = __atomic_exchange_n(&pending_events, 0, __ATOMIC_ACQ_REL);
        if (!flagged && now < next_poll) {
            sleep_millis(1);
            continue;
        }
        next_poll = now + POLL_PERIOD_SECONDS;

        size_t count = 0;
        status = api->line_poll_events(line, events, sizeof(MqlEvent), EVENT_BATCH, &count, &err);
        if (status != MQL_OK) {
            api->line_destroy(line);
            return failed("line_poll_events", status, &err);
        }
        if (count == EVENT_BATCH) {
            /* There may be more: poll again at once. */
            next_poll = now;
        }
        for (size_t i = 0; i < count; i++) {
            const MqlEvent *e = &events[i];
            switch (e->kind) {
            case MQL_EVENT_LINE_STATE:
                if (e->code == MQL_LINE_CONNECTED) {
                    printf("connected\n");
                    fflush(stdout);
                } else {
                    fprintf(stderr, "host: line disconnected: ");
                    put_str(stderr, e->text);
                    fputc('\n', stderr);
                }
                break;
            case MQL_EVENT_TAG_VALUE:
                if (e->tag_id == TAG_ID && (e->flags & MQL_FLAG_VALID) != 0 &&
                    e->value.kind == MQL_VALUE_TEXT) {
                    printf("value ");
                    put_str(stdout, e->value.text);
                    printf("\n");
                    fflush(stdout);
                    if (++values_seen < count_wanted) {
                        break;
                    }
                    int result = print_stats(api, line, &err);
                    api->line_destroy(line);
                    dlclose(lib);
                    return result;
                }
                break;
            case MQL_EVENT_LOG:
                fprintf(stderr, "host: plugin log (level %u): ", (unsigned)e->code);
                put_str(stderr, e->text);
                fputc('\n', stderr);
                break;
            default:
                break;
            }
        }
    }
}
