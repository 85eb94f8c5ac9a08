/*  =========================================================================
    zper_etcd - a small, blocking client of etcd's v3 JSON gateway

    Every call is one POST of a JSON body to one of the endpoints, through
    one reused libcurl easy handle (its connection stays open between
    calls). The one thing to know: etcd's gateway speaks protobuf mapped to
    JSON, so keys and values are standard base64 (with padding), int64
    fields come back as strings ("revision":"12"), and a field at its zero
    value is left out ("succeeded" absent is false, "kvs" absent is no
    keys, "TTL" absent in a keepalive answer is an expired lease).

    Failures. An endpoint that cannot be reached (connect or transfer
    error, timeout) or that answers 5xx (a member without a leader) is
    skipped for the next one; an answer with another HTTP status, or with
    an "error"/"code" member, is etcd's refusal and ends the call. Either
    way the message is kept for zper_etcd_error.

    zper_etcd_test_start runs a real etcd for tests: the Debian binary, on
    free ports of 127.0.0.1, with its data in a folder the test removes.
    ========================================================================= */

#include "zper_etcd.h"
#include "zper_defaults.h"
#include "zper_test_ports.h"
#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>


struct _zper_etcd_t {
    CURL *curl;                         //  one handle: keeps its connection between calls
    struct curl_slist *headers;
    char *endpoints [ZPER_ETCD_ENDPOINTS_MAX];
    size_t endpoint_count;
    size_t current;                     //  the endpoint that answered last
    char *reply;                        //  the body being received
    size_t reply_size;
    size_t reply_capacity;
    char curl_error [CURL_ERROR_SIZE];
    char error [ZPER_ETCD_ERROR_MAX];
};

struct _zper_etcd_txn_t {
    json_t *request;                    //  {"compare":[..],"success":[..],"failure":[..]}
};

//  How one POST ended: s_request tries the next endpoint only on UNREACHED
typedef enum { POST_OK, POST_REFUSED, POST_UNREACHED } post_result_t;

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;

//  curl_global_init is not thread-safe and must run once per process;
//  curl_global_cleanup is never called, since another thread may still
//  hold a client while the process exits.
static void
s_curl_init (void)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
}

//  ---- base64 (standard alphabet, with padding: what etcd's gateway wants) ----

static const char s_base64_alphabet [] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
s_base64_encode (const void *data, size_t size)
{
    const uint8_t *bytes = (const uint8_t *) data;
    char *text = (char *) malloc ((size + 2) / 3 * 4 + 1);
    assert (text);
    char *cursor = text;
    for (size_t index = 0; index < size; index += 3) {
        uint32_t group = (uint32_t) bytes [index] << 16;
        if (index + 1 < size)
            group |= (uint32_t) bytes [index + 1] << 8;
        if (index + 2 < size)
            group |= bytes [index + 2];
        *cursor++ = s_base64_alphabet [(group >> 18) & 63];
        *cursor++ = s_base64_alphabet [(group >> 12) & 63];
        *cursor++ = index + 1 < size? s_base64_alphabet [(group >> 6) & 63]: '=';
        *cursor++ = index + 2 < size? s_base64_alphabet [group & 63]: '=';
    }
    *cursor = 0;
    return text;
}

static int
s_base64_value (char symbol)
{
    const char *found = symbol? strchr (s_base64_alphabet, symbol): NULL;
    return found? (int) (found - s_base64_alphabet): -1;
}

//  Decodes text into a new buffer, NUL-terminated (*size excludes the NUL).
//  Returns NULL when text is not base64.
static char *
s_base64_decode (const char *text, size_t *size)
{
    size_t length = strlen (text);
    while (length > 0 && text [length - 1] == '=')
        length--;
    char *data = (char *) malloc (length / 4 * 3 + 3 + 1);
    assert (data);
    size_t filled = 0;
    uint32_t group = 0;
    int bits = 0;
    for (size_t index = 0; index < length; index++) {
        int value = s_base64_value (text [index]);
        if (value < 0) {
            free (data);
            return NULL;
        }
        group = (group << 6) | (uint32_t) value;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            data [filled++] = (char) ((group >> bits) & 0xFF);
        }
    }
    data [filled] = 0;
    *size = filled;
    return data;
}

//  ---- JSON helpers ---------------------------------------------------------

//  An int64 field of an answer: a string ("12") or a number; absent is 0
static int64_t
s_json_int64 (json_t *object, const char *name)
{
    json_t *value = json_object_get (object, name);
    if (json_is_integer (value))
        return (int64_t) json_integer_value (value);
    if (json_is_string (value))
        return (int64_t) strtoll (json_string_value (value), NULL, 10);
    return 0;
}

static void
s_json_set_int64 (json_t *object, const char *name, int64_t value)
{
    char text [24];
    snprintf (text, sizeof text, "%" PRId64, value);
    json_object_set_new (object, name, json_string (text));
}

static void
s_json_set_base64 (json_t *object, const char *name, const void *data, size_t size)
{
    char *text = s_base64_encode (data, size);
    json_object_set_new (object, name, json_string (text));
    free (text);
}

//  The range_end of a prefix read: the key with its last byte (that is not
//  0xFF) plus one, shorter when it ends in 0xFF bytes; "\0" (every key)
//  when there is no such byte. Returns its size.
static size_t
s_prefix_end (const char *key, char *end, size_t end_size)
{
    size_t size = strlen (key);
    assert (size < end_size);
    memcpy (end, key, size);
    while (size > 0) {
        if ((uint8_t) end [size - 1] != 0xFF) {
            end [size - 1]++;
            return size;
        }
        size--;
    }
    end [0] = 0;
    return 1;
}

//  {"key":b64} or, for a prefix, {"key":b64,"range_end":b64}; an empty
//  prefix is every key ("\0" to "\0")
static json_t *
s_range_request (const char *key, bool prefix)
{
    json_t *request = json_object ();
    size_t key_size = strlen (key);
    if (prefix && key_size == 0)
        s_json_set_base64 (request, "key", "", 1);
    else
        s_json_set_base64 (request, "key", key, key_size);
    if (prefix) {
        char *end = (char *) malloc (key_size + 1);
        assert (end);
        size_t end_size = s_prefix_end (key, end, key_size + 1);
        s_json_set_base64 (request, "range_end", end, end_size);
        free (end);
    }
    return request;
}

//  ---- requests ---------------------------------------------------------------

static size_t
s_write_reply (char *data, size_t size, size_t count, void *argument)
{
    zper_etcd_t *self = (zper_etcd_t *) argument;
    size_t bytes = size * count;
    if (self->reply_size + bytes + 1 > self->reply_capacity) {
        size_t capacity = self->reply_capacity? self->reply_capacity: 4096;
        while (capacity < self->reply_size + bytes + 1)
            capacity *= 2;
        char *grown = (char *) realloc (self->reply, capacity);
        if (!grown)
            return 0;               //  curl fails the transfer
        self->reply = grown;
        self->reply_capacity = capacity;
    }
    memcpy (self->reply + self->reply_size, data, bytes);
    self->reply_size += bytes;
    self->reply [self->reply_size] = 0;
    return bytes;
}

//  The message of an error answer: {"error":"..","code":n} from unary
//  calls, {"error":{"message":"..",..}} from streams (keepalive)
static const char *
s_answer_error (json_t *answer)
{
    json_t *error = json_object_get (answer, "error");
    if (json_is_object (error))
        error = json_object_get (error, "message");
    if (json_is_string (error))
        return json_string_value (error);
    if (json_object_get (answer, "code") && s_json_int64 (answer, "code") != 0)
        return "error code without a message";
    return NULL;
}

//  One POST of body to endpoint index
static post_result_t
s_post (zper_etcd_t *self, size_t index, const char *path, const char *body, json_t **answer)
{
    const char *endpoint = self->endpoints [index];
    char url [1024];
    snprintf (url, sizeof url, "%s%s", endpoint, path);
    self->reply_size = 0;
    if (self->reply)
        self->reply [0] = 0;        //  an empty answer must not read the last one
    self->curl_error [0] = 0;
    curl_easy_setopt (self->curl, CURLOPT_URL, url);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt (self->curl, CURLOPT_POSTFIELDSIZE, (long) strlen (body));
    CURLcode code = curl_easy_perform (self->curl);
    if (code != CURLE_OK) {
        snprintf (self->error, sizeof self->error, "etcd %s: %s", endpoint,
                  self->curl_error [0]? self->curl_error: curl_easy_strerror (code));
        return POST_UNREACHED;
    }
    long status = 0;
    curl_easy_getinfo (self->curl, CURLINFO_RESPONSE_CODE, &status);
    json_t *parsed = self->reply_size? json_loads (self->reply, JSON_DECODE_ANY, NULL): NULL;
    const char *message = parsed? s_answer_error (parsed): NULL;
    if (status != 200 || !json_is_object (parsed) || message) {
        if (!message)
            message = self->reply_size? self->reply: "empty answer";
        if (status != 200)
            snprintf (self->error, sizeof self->error, "etcd %s: HTTP %ld: %.200s%s", endpoint,
                      status, message, strlen (message) > 200? "...": "");
        else
            snprintf (self->error, sizeof self->error, "etcd %s: %.200s%s", endpoint, message,
                      strlen (message) > 200? "...": "");
        //  A body's line breaks would split the log line
        for (char *cursor = self->error; *cursor; cursor++)
            if (*cursor == '\n' || *cursor == '\r')
                *cursor = ' ';
        json_decref (parsed);
        return status >= 500? POST_UNREACHED: POST_REFUSED;
    }
    *answer = parsed;
    return POST_OK;
}

//  POST request to path, trying each endpoint from the last one that
//  answered. Returns 0 with *answer (the caller decrefs it), or -1.
static int
s_request (zper_etcd_t *self, const char *path, json_t *request, json_t **answer)
{
    char *body = json_dumps (request, JSON_COMPACT);
    assert (body);
    post_result_t result = POST_UNREACHED;
    for (size_t tried = 0; tried < self->endpoint_count && result == POST_UNREACHED; tried++) {
        size_t index = (self->current + tried) % self->endpoint_count;
        result = s_post (self, index, path, body, answer);
        if (result != POST_UNREACHED)
            self->current = index;
    }
    free (body);
    return result == POST_OK? 0: -1;
}

//  Like s_request, consuming request
static int
s_request_new (zper_etcd_t *self, const char *path, json_t *request, json_t **answer)
{
    int rc = s_request (self, path, request, answer);
    json_decref (request);
    return rc;
}

//  ---- client -----------------------------------------------------------------

zper_etcd_t *
zper_etcd_new (const char *endpoints, int timeout_ms)
{
    if (!endpoints || timeout_ms <= 0)
        return NULL;
    pthread_once (&s_curl_once, s_curl_init);
    zper_etcd_t *self = (zper_etcd_t *) zmalloc (sizeof (zper_etcd_t));
    assert (self);
    //  "http://a:2379, http://b:2379/": spaces and a trailing slash are tolerated
    char *list = strdup (endpoints);
    assert (list);
    char *saved = NULL;
    bool valid = true;
    for (char *item = strtok_r (list, ",", &saved); item && valid;
         item = strtok_r (NULL, ",", &saved)) {
        while (*item == ' ' || *item == '\t')
            item++;
        size_t length = strlen (item);
        while (length > 0 && (item [length - 1] == ' ' || item [length - 1] == '\t'
                              || item [length - 1] == '/'))
            item [--length] = 0;
        const char *host = strncmp (item, "http://", 7) == 0? item + 7:
                           strncmp (item, "https://", 8) == 0? item + 8: NULL;
        if (!host || !*host || strchr (host, '/') || strchr (host, ' ')
            || self->endpoint_count == ZPER_ETCD_ENDPOINTS_MAX)
            valid = false;
        else
            self->endpoints [self->endpoint_count++] = strdup (item);
    }
    free (list);
    if (valid && self->endpoint_count > 0)
        self->curl = curl_easy_init ();
    if (!self->curl) {
        zper_etcd_destroy (&self);
        return NULL;
    }
    self->headers = curl_slist_append (NULL, "Content-Type: application/json");
    //  No "Expect: 100-continue" round trip before larger bodies
    self->headers = curl_slist_append (self->headers, "Expect:");
    curl_easy_setopt (self->curl, CURLOPT_HTTPHEADER, self->headers);
    curl_easy_setopt (self->curl, CURLOPT_POST, 1L);
    curl_easy_setopt (self->curl, CURLOPT_WRITEFUNCTION, s_write_reply);
    curl_easy_setopt (self->curl, CURLOPT_WRITEDATA, self);
    curl_easy_setopt (self->curl, CURLOPT_ERRORBUFFER, self->curl_error);
    curl_easy_setopt (self->curl, CURLOPT_TIMEOUT_MS, (long) timeout_ms);
    curl_easy_setopt (self->curl, CURLOPT_CONNECTTIMEOUT_MS, (long) timeout_ms);
    //  No signals (curl's resolver timeout would use SIGALRM in a threaded
    //  process), and no proxy from the environment: cluster traffic goes
    //  straight to the endpoints it names.
    curl_easy_setopt (self->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (self->curl, CURLOPT_PROXY, "");
    return self;
}

void
zper_etcd_destroy (zper_etcd_t **self_p)
{
    assert (self_p);
    zper_etcd_t *self = *self_p;
    if (!self)
        return;
    if (self->curl)
        curl_easy_cleanup (self->curl);
    curl_slist_free_all (self->headers);
    for (size_t index = 0; index < self->endpoint_count; index++)
        free (self->endpoints [index]);
    free (self->reply);
    free (self);
    *self_p = NULL;
}

const char *
zper_etcd_error (zper_etcd_t *self)
{
    assert (self);
    return self->error;
}

static void
s_kv_destroy (void **item_p)
{
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) *item_p;
    if (kv) {
        free (kv->key);
        free (kv->value);
        free (kv);
        *item_p = NULL;
    }
}

//  One entry of a range answer's "kvs", or NULL when it is not base64
static zper_etcd_kv_t *
s_kv_new (json_t *entry)
{
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zmalloc (sizeof (zper_etcd_kv_t));
    assert (kv);
    const char *key = json_string_value (json_object_get (entry, "key"));
    const char *value = json_string_value (json_object_get (entry, "value"));
    size_t key_size;
    kv->key = s_base64_decode (key? key: "", &key_size);
    kv->value = s_base64_decode (value? value: "", &kv->value_size);
    kv->create_revision = s_json_int64 (entry, "create_revision");
    kv->mod_revision = s_json_int64 (entry, "mod_revision");
    kv->version = s_json_int64 (entry, "version");
    kv->lease = s_json_int64 (entry, "lease");
    if (!kv->key || !kv->value) {
        void *item = kv;
        s_kv_destroy (&item);
        kv = NULL;
    }
    return kv;
}

int
zper_etcd_get (zper_etcd_t *self, const char *key, bool prefix, zlistx_t **kvs,
               int64_t *revision)
{
    assert (self && key && kvs);
    *kvs = NULL;
    json_t *answer;
    if (s_request_new (self, "/v3/kv/range", s_range_request (key, prefix), &answer))
        return -1;
    zlistx_t *list = zlistx_new ();
    assert (list);
    zlistx_set_destructor (list, s_kv_destroy);
    json_t *entries = json_object_get (answer, "kvs");
    size_t index;
    json_t *entry;
    int rc = 0;
    json_array_foreach (entries, index, entry) {
        zper_etcd_kv_t *kv = s_kv_new (entry);
        if (!kv) {
            snprintf (self->error, sizeof self->error, "etcd: a range answer holds a key or "
                      "value that is not base64");
            rc = -1;
            break;
        }
        zlistx_add_end (list, kv);
    }
    if (rc == 0) {
        *kvs = list;
        if (revision)
            *revision = s_json_int64 (json_object_get (answer, "header"), "revision");
    }
    else
        zlistx_destroy (&list);
    json_decref (answer);
    return rc;
}

int
zper_etcd_revision (zper_etcd_t *self, const char *prefix, int64_t *revision, int64_t *count)
{
    assert (self && prefix);
    json_t *request = s_range_request (prefix, true);
    json_object_set_new (request, "count_only", json_true ());
    json_t *answer;
    if (s_request_new (self, "/v3/kv/range", request, &answer))
        return -1;
    if (revision)
        *revision = s_json_int64 (json_object_get (answer, "header"), "revision");
    if (count)
        *count = s_json_int64 (answer, "count");
    json_decref (answer);
    return 0;
}

//  {"key":..,"value":..,"lease":".."}: a put request, in /v3/kv/put or a txn
static json_t *
s_put_request (const char *key, const void *value, size_t size, int64_t lease)
{
    json_t *request = json_object ();
    s_json_set_base64 (request, "key", key, strlen (key));
    s_json_set_base64 (request, "value", value, size);
    if (lease)
        s_json_set_int64 (request, "lease", lease);
    return request;
}

int
zper_etcd_put (zper_etcd_t *self, const char *key, const void *value, size_t size, int64_t lease)
{
    assert (self && key && (value || size == 0));
    json_t *answer;
    if (s_request_new (self, "/v3/kv/put", s_put_request (key, value, size, lease), &answer))
        return -1;
    json_decref (answer);
    return 0;
}

int
zper_etcd_delete (zper_etcd_t *self, const char *key, bool prefix)
{
    assert (self && key);
    json_t *answer;
    if (s_request_new (self, "/v3/kv/deleterange", s_range_request (key, prefix), &answer))
        return -1;
    int deleted = (int) s_json_int64 (answer, "deleted");
    json_decref (answer);
    return deleted;
}

//  ---- leases -----------------------------------------------------------------

int64_t
zper_etcd_lease_grant (zper_etcd_t *self, int64_t ttl_s)
{
    assert (self);
    json_t *request = json_object ();
    s_json_set_int64 (request, "TTL", ttl_s);
    json_t *answer;
    if (s_request_new (self, "/v3/lease/grant", request, &answer))
        return -1;
    int64_t lease = s_json_int64 (answer, "ID");
    json_decref (answer);
    if (lease <= 0) {
        snprintf (self->error, sizeof self->error, "etcd: lease grant answered without an ID");
        return -1;
    }
    return lease;
}

int64_t
zper_etcd_lease_keepalive (zper_etcd_t *self, int64_t lease)
{
    assert (self);
    json_t *request = json_object ();
    s_json_set_int64 (request, "ID", lease);
    json_t *answer;
    if (s_request_new (self, "/v3/lease/keepalive", request, &answer))
        return -1;
    //  A stream's answer: {"result":{"ID":..,"TTL":".."}}; no TTL once expired
    int64_t ttl = s_json_int64 (json_object_get (answer, "result"), "TTL");
    json_decref (answer);
    return ttl > 0? ttl: 0;
}

int
zper_etcd_lease_revoke (zper_etcd_t *self, int64_t lease)
{
    assert (self);
    json_t *request = json_object ();
    s_json_set_int64 (request, "ID", lease);
    json_t *answer;
    if (s_request_new (self, "/v3/lease/revoke", request, &answer))
        return -1;
    json_decref (answer);
    return 0;
}

//  ---- transactions -----------------------------------------------------------

zper_etcd_txn_t *
zper_etcd_txn_new (void)
{
    zper_etcd_txn_t *self = (zper_etcd_txn_t *) zmalloc (sizeof (zper_etcd_txn_t));
    assert (self);
    self->request = json_pack ("{s:[], s:[], s:[]}", "compare", "success", "failure");
    assert (self->request);
    return self;
}

void
zper_etcd_txn_destroy (zper_etcd_txn_t **self_p)
{
    assert (self_p);
    zper_etcd_txn_t *self = *self_p;
    if (!self)
        return;
    json_decref (self->request);
    free (self);
    *self_p = NULL;
}

void
zper_etcd_txn_compare (zper_etcd_txn_t *self, const char *key, zper_etcd_target_t target,
                       zper_etcd_result_t result, int64_t value)
{
    assert (self && key);
    static const char *targets [] = { "CREATE", "MOD", "VERSION" };
    static const char *fields [] = { "create_revision", "mod_revision", "version" };
    static const char *results [] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
    assert ((unsigned) target < 3 && (unsigned) result < 4);
    json_t *compare = json_object ();
    s_json_set_base64 (compare, "key", key, strlen (key));
    json_object_set_new (compare, "target", json_string (targets [target]));
    json_object_set_new (compare, "result", json_string (results [result]));
    s_json_set_int64 (compare, fields [target], value);
    json_array_append_new (json_object_get (self->request, "compare"), compare);
}

static void
s_txn_operation (zper_etcd_txn_t *self, bool on_success, const char *name, json_t *request)
{
    json_array_append_new (json_object_get (self->request, on_success? "success": "failure"),
                           json_pack ("{s:o}", name, request));
}

void
zper_etcd_txn_put (zper_etcd_txn_t *self, bool on_success, const char *key, const void *value,
                   size_t size, int64_t lease)
{
    assert (self && key && (value || size == 0));
    s_txn_operation (self, on_success, "request_put", s_put_request (key, value, size, lease));
}

void
zper_etcd_txn_delete (zper_etcd_txn_t *self, bool on_success, const char *key)
{
    assert (self && key);
    s_txn_operation (self, on_success, "request_delete_range", s_range_request (key, false));
}

int
zper_etcd_txn_commit (zper_etcd_t *self, zper_etcd_txn_t *txn, bool *succeeded)
{
    assert (self && txn && succeeded);
    json_t *answer;
    if (s_request (self, "/v3/kv/txn", txn->request, &answer))
        return -1;
    *succeeded = json_is_true (json_object_get (answer, "succeeded"));
    json_decref (answer);
    return 0;
}

//  ---- a real etcd for tests ----------------------------------------------------


//  The etcd binary: the first "etcd" on PATH, else /usr/bin/etcd
static char *
s_etcd_binary (void)
{
    const char *path = getenv ("PATH");
    char *list = strdup (path? path: "");
    assert (list);
    char *saved = NULL, *found = NULL;
    for (char *folder = strtok_r (list, ":", &saved); folder && !found;
         folder = strtok_r (NULL, ":", &saved)) {
        char *candidate = zsys_sprintf ("%s/etcd", folder);
        if (access (candidate, X_OK) == 0)
            found = strdup (candidate);
        zstr_free (&candidate);
    }
    free (list);
    if (!found && access ("/usr/bin/etcd", X_OK) == 0)
        found = strdup ("/usr/bin/etcd");
    return found;
}

//  etcd 3.4 refuses to run on an architecture it does not support unless
//  ETCD_UNSUPPORTED_ARCH names it; amd64 and ppc64le need nothing. Writes
//  "ETCD_UNSUPPORTED_ARCH=<go arch>" into setting, or "" when not needed.
static void
s_etcd_arch_setting (char *setting, size_t size)
{
    *setting = 0;
#if !defined (__x86_64__) && !defined (__powerpc64__)
    struct utsname name;
    if (uname (&name) == 0) {
        const char *arch = streq (name.machine, "aarch64")? "arm64":
                           strncmp (name.machine, "arm", 3) == 0? "arm":
                           (name.machine [0] == 'i' && strstr (name.machine, "86"))? "386":
                           name.machine;
        snprintf (setting, size, "ETCD_UNSUPPORTED_ARCH=%s", arch);
    }
#endif
}

//  Fork and exec binary on client_port and peer_port; returns the pid or -1
static int
s_etcd_spawn (const char *binary, const char *folder, int client_port, int peer_port)
{
    char data [1024], log [1024], client [64], peer [64], cluster [96], arch [64];
    snprintf (data, sizeof data, "%s/data", folder);
    snprintf (log, sizeof log, "%s/etcd.log", folder);
    snprintf (client, sizeof client, "http://127.0.0.1:%d", client_port);
    snprintf (peer, sizeof peer, "http://127.0.0.1:%d", peer_port);
    snprintf (cluster, sizeof cluster, "zpertest=%s", peer);
    char *arguments [] = { (char *) binary, "--data-dir", data, "--name", "zpertest",
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", cluster, NULL };
    //  The child's environment is built here: between fork and exec only
    //  async-signal-safe calls are allowed (other threads may hold malloc's lock)
    s_etcd_arch_setting (arch, sizeof arch);
    size_t settings = 0;
    while (environ [settings])
        settings++;
    char **environment = (char **) calloc (settings + 2, sizeof (char *));
    assert (environment);
    memcpy (environment, environ, settings * sizeof (char *));
    if (*arch)
        environment [settings] = arch;
    //  A previous attempt may have left a half-made member behind
    zdir_t *stale = zdir_new (data, NULL);
    if (stale) {
        zdir_remove (stale, true);
        zdir_destroy (&stale);
    }
    int log_handle = open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_handle < 0) {
        free (environment);
        return -1;
    }
    pid_t parent = getpid ();
    pid_t pid = fork ();
    if (pid == 0) {
        //  An etcd whose test died (an assert) must not outlive it: it gets
        //  SIGTERM when the thread that started it ends, so a test starts
        //  etcd from a thread that lives as long as it needs it
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        if (getppid () != parent)
            _exit (127);
        dup2 (log_handle, STDOUT_FILENO);
        dup2 (log_handle, STDERR_FILENO);
        execve (binary, arguments, environment);
        _exit (127);
    }
    close (log_handle);
    free (environment);
    return pid < 0? -1: (int) pid;
}

//  Wait until etcd at endpoint answers a range request (returns 0), or its
//  process ended (returns -1: reaped), or ZPER_ETCD_TEST_START_MS passed (-2)
static int
s_etcd_wait (int pid, const char *endpoint)
{
    zper_etcd_t *client = zper_etcd_new (endpoint, ZPER_ETCD_TEST_POLL_MS * 5);
    assert (client);
    int64_t deadline = zclock_mono () + ZPER_ETCD_TEST_START_MS;
    int rc = -2;
    while (rc == -2 && zclock_mono () < deadline) {
        int64_t revision;
        if (zper_etcd_revision (client, "", &revision, NULL) == 0)
            rc = 0;
        else
        if (waitpid (pid, NULL, WNOHANG) == pid)
            rc = -1;                //  it died (a port was taken)
        else
            zclock_sleep (ZPER_ETCD_TEST_POLL_MS);
    }
    zper_etcd_destroy (&client);
    return rc;
}

int
zper_etcd_test_start (const char *folder, char *endpoint, size_t endpoint_size)
{
    assert (folder && endpoint && endpoint_size > 0);
    char *binary = s_etcd_binary ();
    if (!binary || zsys_dir_create ("%s", folder)) {
        free (binary);
        return -1;
    }
    int pid = -1;
    for (int attempt = 0; attempt < ZPER_ETCD_TEST_ATTEMPTS && pid < 0; attempt++) {
        int client_port = zper_test_ports_reserve ();
        int peer_port = zper_test_ports_reserve ();
        if (client_port < 0 || peer_port < 0)
            continue;
        snprintf (endpoint, endpoint_size, "http://127.0.0.1:%d", client_port);
        pid = s_etcd_spawn (binary, folder, client_port, peer_port);
        int waited = pid > 0? s_etcd_wait (pid, endpoint): -1;
        if (waited == -2)
            zper_etcd_test_stop (pid);
        if (waited)
            pid = -1;
    }
    free (binary);
    return pid;
}

void
zper_etcd_test_stop (int pid)
{
    if (pid <= 0)
        return;
    if (kill (pid, SIGTERM) == 0) {
        int64_t deadline = zclock_mono () + ZPER_ETCD_TEST_STOP_MS;
        while (waitpid (pid, NULL, WNOHANG) == 0) {
            if (zclock_mono () >= deadline) {
                kill (pid, SIGKILL);
                waitpid (pid, NULL, 0);
                break;
            }
            zclock_sleep (20);
        }
    }
}

//  ---- selftest -------------------------------------------------------------

//  A fake HTTP endpoint: answers every request with args (a status line and
//  a JSON body, "503 Service Unavailable\n{...}") and closes the connection.
//  Sends its port on the pipe once bound.
static void
s_test_fake_endpoint (zsock_t *pipe, void *args)
{
    const char *status = (const char *) args;
    const char *body = strchr (status, '\n') + 1;
    char answer [512];
    int size = snprintf (answer, sizeof answer, "HTTP/1.1 %.*s\r\nContent-Type: application/json"
                         "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         (int) (body - 1 - status), status, strlen (body), body);
    zsock_t *stream = zsock_new (ZMQ_STREAM);
    assert (stream);
    int port = zsock_bind (stream, "tcp://127.0.0.1:*");
    assert (port > 0);
    zsock_signal (pipe, 0);
    zsock_send (pipe, "i", port);
    zpoller_t *poller = zpoller_new (pipe, stream, NULL);
    while (true) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, -1);
        if (which != stream)
            break;                  //  $TERM or interrupted
        zframe_t *peer = zframe_recv (stream);
        zframe_t *data = zframe_recv (stream);
        if (peer && data && zframe_size (data) > 0) {
            //  The first bytes of a request are enough to answer it
            zframe_send (&peer, stream, ZFRAME_MORE | ZFRAME_REUSE);
            zmq_send (zsock_resolve (stream), answer, (size_t) size, 0);
            zframe_send (&peer, stream, ZFRAME_MORE | ZFRAME_REUSE);
            zmq_send (zsock_resolve (stream), "", 0, 0);
        }
        zframe_destroy (&peer);
        zframe_destroy (&data);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&stream);
}

//  Starts a fake endpoint answering status_and_body; writes its URL
static zactor_t *
s_test_fake_start (const char *status_and_body, char *url, size_t url_size)
{
    zactor_t *fake = zactor_new (s_test_fake_endpoint, (void *) status_and_body);
    assert (fake);
    int port = 0;
    assert (zsock_recv (fake, "i", &port) == 0 && port > 0);
    snprintf (url, url_size, "http://127.0.0.1:%d", port);
    return fake;
}

//  The value of key, or NULL when absent (the caller frees it)
static char *
s_test_value (zper_etcd_t *etcd, const char *key)
{
    zlistx_t *kvs;
    assert (zper_etcd_get (etcd, key, false, &kvs, NULL) == 0);
    assert (zlistx_size (kvs) <= 1);
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    char *value = kv? strdup (kv->value): NULL;
    zlistx_destroy (&kvs);
    return value;
}

static void
s_test_kv (zper_etcd_t *etcd)
{
    //  Binary-safe values; keys and values of every size class of base64
    int64_t before;
    assert (zper_etcd_revision (etcd, "/t/", &before, NULL) == 0 && before > 0);
    const char binary [] = { 'a', 0, (char) 0xFF, 'b' };
    assert (zper_etcd_put (etcd, "/t/b", binary, sizeof binary, 0) == 0);
    assert (zper_etcd_put (etcd, "/t/a", "1", 1, 0) == 0);
    assert (zper_etcd_put (etcd, "/t/c", "", 0, 0) == 0);
    assert (zper_etcd_put (etcd, "/t/a", "one", 3, 0) == 0);
    assert (zper_etcd_put (etcd, "/u", "outside", 7, 0) == 0);

    zlistx_t *kvs;
    int64_t revision;
    assert (zper_etcd_get (etcd, "/t/a", false, &kvs, &revision) == 0);
    assert (zlistx_size (kvs) == 1 && revision == before + 5);
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    assert (streq (kv->key, "/t/a") && streq (kv->value, "one") && kv->value_size == 3);
    assert (kv->create_revision == before + 2 && kv->mod_revision == before + 4);
    assert (kv->version == 2 && kv->lease == 0);
    zlistx_destroy (&kvs);

    //  A prefix read: sorted, and "/u" (just past "/t/") left out
    assert (zper_etcd_get (etcd, "/t/", true, &kvs, &revision) == 0);
    assert (zlistx_size (kvs) == 3 && revision == before + 5);
    kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    assert (streq (kv->key, "/t/a"));
    kv = (zper_etcd_kv_t *) zlistx_next (kvs);
    assert (streq (kv->key, "/t/b") && kv->value_size == sizeof binary);
    assert (memcmp (kv->value, binary, sizeof binary) == 0 && kv->value [kv->value_size] == 0);
    kv = (zper_etcd_kv_t *) zlistx_next (kvs);
    assert (streq (kv->key, "/t/c") && kv->value_size == 0 && streq (kv->value, ""));
    assert (kv->version == 1);
    zlistx_destroy (&kvs);
    assert (zper_etcd_get (etcd, "/t/missing", false, &kvs, NULL) == 0);
    assert (zlistx_size (kvs) == 0);
    zlistx_destroy (&kvs);

    int64_t count;
    assert (zper_etcd_revision (etcd, "/t/", &revision, &count) == 0);
    assert (revision == before + 5 && count == 3);
    assert (zper_etcd_revision (etcd, "", &revision, &count) == 0 && count >= 4);
    assert (zper_etcd_revision (etcd, "/nothing/", &revision, &count) == 0 && count == 0);

    //  Delete one, then a prefix; a missing key deletes nothing
    assert (zper_etcd_delete (etcd, "/t/b", false) == 1);
    assert (zper_etcd_delete (etcd, "/t/b", false) == 0);
    assert (zper_etcd_delete (etcd, "/t/", true) == 2);
    assert (zper_etcd_revision (etcd, "/t/", &revision, &count) == 0 && count == 0);
    char *value = s_test_value (etcd, "/u");
    assert (value && streq (value, "outside"));
    free (value);
    assert (zper_etcd_delete (etcd, "/u", false) == 1);
}

static void
s_test_leases (zper_etcd_t *etcd, bool verbose)
{
    int64_t lease = zper_etcd_lease_grant (etcd, 30);
    assert (lease > 0);
    assert (zper_etcd_put (etcd, "/lease/key", "held", 4, lease) == 0);
    zlistx_t *kvs;
    assert (zper_etcd_get (etcd, "/lease/key", false, &kvs, NULL) == 0);
    zper_etcd_kv_t *kv = (zper_etcd_kv_t *) zlistx_first (kvs);
    assert (kv && kv->lease == lease);
    zlistx_destroy (&kvs);
    int64_t ttl = zper_etcd_lease_keepalive (etcd, lease);
    assert (ttl > 0 && ttl <= 30);
    assert (zper_etcd_lease_revoke (etcd, lease) == 0);
    char *value = s_test_value (etcd, "/lease/key");
    assert (value == NULL);
    assert (zper_etcd_lease_keepalive (etcd, lease) == 0);
    //  A put on a lease that is gone is refused, with etcd's reason
    assert (zper_etcd_put (etcd, "/lease/key", "late", 4, lease) == -1);
    assert (strstr (zper_etcd_error (etcd), "lease not found"));
    if (verbose)
        zsys_info ("zper_etcd: refused as expected: %s", zper_etcd_error (etcd));

    //  A lease not kept alive expires and takes its keys with it
    lease = zper_etcd_lease_grant (etcd, ZPER_LEASE_TTL_MIN_S);
    assert (lease > 0);
    assert (zper_etcd_put (etcd, "/lease/short", "x", 1, lease) == 0);
    int64_t deadline = zclock_mono () + 10000;
    while ((value = s_test_value (etcd, "/lease/short")) && zclock_mono () < deadline) {
        free (value);
        zclock_sleep (200);
    }
    assert (value == NULL);
    assert (zper_etcd_lease_keepalive (etcd, lease) == 0);
}

static void
s_test_txn (zper_etcd_t *etcd)
{
    //  Create-if-absent: once, then the failure operations run instead
    for (int round = 0; round < 2; round++) {
        zper_etcd_txn_t *txn = zper_etcd_txn_new ();
        zper_etcd_txn_compare (txn, "/txn/leader", ZPER_ETCD_CREATE_REVISION, ZPER_ETCD_EQUAL, 0);
        zper_etcd_txn_put (txn, true, "/txn/leader", "first", 5, 0);
        zper_etcd_txn_put (txn, true, "/txn/other", "created", 7, 0);
        zper_etcd_txn_put (txn, false, "/txn/lost", "lost", 4, 0);
        zper_etcd_txn_delete (txn, false, "/txn/other");
        bool succeeded = round == 0? false: true;
        assert (zper_etcd_txn_commit (etcd, txn, &succeeded) == 0);
        assert (succeeded == (round == 0));
        zper_etcd_txn_destroy (&txn);
        zper_etcd_txn_destroy (&txn);
    }
    char *value = s_test_value (etcd, "/txn/leader");
    assert (value && streq (value, "first"));
    free (value);
    value = s_test_value (etcd, "/txn/lost");
    assert (value && streq (value, "lost"));
    free (value);
    assert (s_test_value (etcd, "/txn/other") == NULL);

    //  Compare-and-swap on mod_revision: the first writer wins, a stale one loses
    zlistx_t *kvs;
    assert (zper_etcd_get (etcd, "/txn/leader", false, &kvs, NULL) == 0);
    int64_t seen = ((zper_etcd_kv_t *) zlistx_first (kvs))->mod_revision;
    zlistx_destroy (&kvs);
    for (int round = 0; round < 2; round++) {
        zper_etcd_txn_t *txn = zper_etcd_txn_new ();
        zper_etcd_txn_compare (txn, "/txn/leader", ZPER_ETCD_MOD_REVISION, ZPER_ETCD_EQUAL, seen);
        zper_etcd_txn_compare (txn, "/txn/leader", ZPER_ETCD_VERSION, ZPER_ETCD_GREATER, 0);
        zper_etcd_txn_put (txn, true, "/txn/leader", round == 0? "second": "stale", round == 0? 6: 5, 0);
        bool succeeded;
        assert (zper_etcd_txn_commit (etcd, txn, &succeeded) == 0);
        assert (succeeded == (round == 0));
        zper_etcd_txn_destroy (&txn);
    }
    value = s_test_value (etcd, "/txn/leader");
    assert (value && streq (value, "second"));
    free (value);
    assert (zper_etcd_delete (etcd, "/txn/", true) == 2);
}

void
zper_etcd_test (bool verbose)
{
    printf (verbose? "\n": "");

    //  Encoding: every padding case round-trips
    const char *plain [] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    const char *coded [] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
    for (size_t index = 0; index < sizeof plain / sizeof plain [0]; index++) {
        char *text = s_base64_encode (plain [index], strlen (plain [index]));
        assert (streq (text, coded [index]));
        size_t size;
        char *data = s_base64_decode (text, &size);
        assert (data && size == strlen (plain [index]) && streq (data, plain [index]));
        free (data);
        free (text);
    }
    size_t size;
    assert (s_base64_decode ("Zm9v!", &size) == NULL);
    char end [8];
    assert (s_prefix_end ("/a/", end, sizeof end) == 3 && memcmp (end, "/a0", 3) == 0);
    assert (s_prefix_end ("a\xFF", end, sizeof end) == 1 && end [0] == 'b');
    assert (s_prefix_end ("\xFF", end, sizeof end) == 1 && end [0] == 0);

    //  Endpoint lists
    assert (zper_etcd_new ("", 1000) == NULL);
    assert (zper_etcd_new ("127.0.0.1:2379", 1000) == NULL);
    assert (zper_etcd_new ("http://", 1000) == NULL);
    assert (zper_etcd_new ("http://127.0.0.1:2379/v3", 1000) == NULL);
    zper_etcd_t *listed = zper_etcd_new ("http://127.0.0.1:1, https://127.0.0.1:2/", 1000);
    assert (listed);
    zper_etcd_destroy (&listed);
    zper_etcd_destroy (&listed);

    char folder [] = "/tmp/zper-etcd-XXXXXX";
    assert (mkdtemp (folder));
    char endpoint [64];
    int pid = zper_etcd_test_start (folder, endpoint, sizeof endpoint);
    assert (pid > 0);
    if (verbose)
        zsys_info ("zper_etcd: etcd %d at %s", pid, endpoint);
    zper_etcd_t *etcd = zper_etcd_new (endpoint, 2000);
    assert (etcd);
    assert (streq (zper_etcd_error (etcd), ""));
    s_test_kv (etcd);
    s_test_leases (etcd, verbose);
    s_test_txn (etcd);

    //  A dead endpoint fails with a reason; dead then live succeeds
    int dead_port = zper_test_ports_reserve ();
    assert (dead_port > 0);
    char dead [64], both [160];
    snprintf (dead, sizeof dead, "http://127.0.0.1:%d", dead_port);
    snprintf (both, sizeof both, "%s,%s", dead, endpoint);
    zper_etcd_t *unreachable = zper_etcd_new (dead, 1000);
    assert (unreachable);
    assert (zper_etcd_put (unreachable, "/dead", "x", 1, 0) == -1);
    assert (*zper_etcd_error (unreachable) && strstr (zper_etcd_error (unreachable), dead));
    assert (zper_etcd_lease_keepalive (unreachable, 1) == -1);
    if (verbose)
        zsys_info ("zper_etcd: unreachable as expected: %s", zper_etcd_error (unreachable));
    zper_etcd_destroy (&unreachable);
    zper_etcd_t *fallback = zper_etcd_new (both, 1000);
    assert (fallback);
    assert (zper_etcd_put (fallback, "/fallback", "y", 1, 0) == 0);
    assert (fallback->current == 1);    //  the live one is asked first from now on
    char *value = s_test_value (fallback, "/fallback");
    assert (value && streq (value, "y"));
    free (value);
    zper_etcd_destroy (&fallback);

    //  A member that answers 5xx (no leader) is skipped like a dead one; a
    //  4xx is etcd's refusal: the next endpoint is not asked
    char fake_url [64];
    zactor_t *fake = s_test_fake_start ("503 Service Unavailable\n"
        "{\"error\":\"etcdserver: no leader\",\"code\":14}", fake_url, sizeof fake_url);
    snprintf (both, sizeof both, "%s,%s", fake_url, endpoint);
    fallback = zper_etcd_new (both, 1000);
    assert (zper_etcd_put (fallback, "/fallback", "z", 1, 0) == 0);
    assert (fallback->current == 1);
    assert (strstr (zper_etcd_error (fallback), "HTTP 503: etcdserver: no leader"));
    zper_etcd_destroy (&fallback);
    zactor_destroy (&fake);
    fake = s_test_fake_start ("400 Bad Request\n"
        "{\"error\":\"etcdserver: refused\",\"code\":3}", fake_url, sizeof fake_url);
    snprintf (both, sizeof both, "%s,%s", fake_url, endpoint);
    fallback = zper_etcd_new (both, 1000);
    assert (zper_etcd_put (fallback, "/fallback", "w", 1, 0) == -1);
    assert (strstr (zper_etcd_error (fallback), "HTTP 400: etcdserver: refused"));
    assert (fallback->current == 0);
    zper_etcd_destroy (&fallback);
    zactor_destroy (&fake);
    value = s_test_value (etcd, "/fallback");
    assert (value && streq (value, "z"));
    free (value);

    //  A request etcd refuses (here: a key range it cannot read) is -1
    //  with etcd's reason, and is not retried elsewhere
    zper_etcd_txn_t *txn = zper_etcd_txn_new ();
    zper_etcd_txn_put (txn, true, "", "x", 1, 0);
    bool succeeded;
    assert (zper_etcd_txn_commit (etcd, txn, &succeeded) == -1);
    assert (strstr (zper_etcd_error (etcd), endpoint));
    if (verbose)
        zsys_info ("zper_etcd: refused as expected: %s", zper_etcd_error (etcd));
    zper_etcd_txn_destroy (&txn);

    zper_etcd_destroy (&etcd);
    zper_etcd_destroy (&etcd);
    zper_etcd_test_stop (pid);
    zdir_t *dir = zdir_new (folder, NULL);
    assert (dir);
    zdir_remove (dir, true);
    zdir_destroy (&dir);
    assert (!zsys_file_exists (folder));
}
