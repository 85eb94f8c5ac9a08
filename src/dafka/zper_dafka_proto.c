/*  =========================================================================
    zper_dafka_proto - the Dafka wire codec

    Frame 0 carries the ZeroMQ topic and the header together:

        +----+-------------+------+---------+---------------------------+
        | id | topic bytes | 0x00 | 0x01    | fields of the id (below)  |
        +----+-------------+------+---------+---------------------------+
        string = [len:1][bytes]; number = 8 or 4 bytes big-endian;
        strings = [count:4] then per item [len:4][bytes]

    The one thing to know: every length comes from the network, so the
    decoder checks each one against the bytes that remain and never reads
    past the frame (a failed check makes the message malformed, it never
    asserts). No signature bytes: the running reference never writes them.
    ========================================================================= */

#include "zper_dafka_proto.h"
#include <string.h>

#define S_FIELD_ADDRESS     0x01
#define S_FIELD_SUBJECT     0x02
#define S_FIELD_SEQUENCE    0x04
#define S_FIELD_COUNT       0x08
#define S_FIELD_SUBJECTS    0x10
#define S_FIELD_CONTENT     0x20
#define S_FIELD_TOPIC       0x40
#define S_NUMBER8           8
#define S_NUMBER4           4

struct _zper_dafka_msg_t {
    int id;
    char topic [ZPER_DAFKA_STRING_MAX + 1];
    char address [ZPER_DAFKA_STRING_MAX + 1];
    char subject [ZPER_DAFKA_STRING_MAX + 1];
    uint64_t sequence;
    uint32_t count;
    zlist_t *subjects;
    zframe_t *content;
    const char *reason;
    char sender [41];               //  User-Id of the last received message (Z85 key), or ""
    bool track_sender;              //  read it at all
    zper_guard_t *guard;            //  drops the messages of removed keys (not owned), or NULL
    int too_long;                   //  S_FIELD_* bits (S_FIELD_TOPIC too) set to an overlong string
};

//  The fields each message id carries, in wire order: address, subject,
//  sequence, count, subjects (a fixed order for every id of spec section 3).
static int
s_fields (int id)
{
    switch (id) {
        case ZPER_DAFKA_RECORD:
        case ZPER_DAFKA_DIRECT_RECORD:
            return S_FIELD_ADDRESS | S_FIELD_SUBJECT | S_FIELD_SEQUENCE | S_FIELD_CONTENT;
        case ZPER_DAFKA_FETCH:
            return S_FIELD_ADDRESS | S_FIELD_SUBJECT | S_FIELD_SEQUENCE | S_FIELD_COUNT;
        case ZPER_DAFKA_ACK:
            return S_FIELD_SUBJECT | S_FIELD_SEQUENCE;
        case ZPER_DAFKA_HEAD:
        case ZPER_DAFKA_DIRECT_HEAD:
            return S_FIELD_ADDRESS | S_FIELD_SUBJECT | S_FIELD_SEQUENCE;
        case ZPER_DAFKA_GET_HEADS:
        case ZPER_DAFKA_STORE_HELLO:
            return S_FIELD_ADDRESS;
        case ZPER_DAFKA_CONSUMER_HELLO:
            return S_FIELD_ADDRESS | S_FIELD_SUBJECTS;
        default:
            return -1;
    }
}

bool
zper_dafka_msg_id_known (int id)
{
    return s_fields (id) >= 0;
}

zper_dafka_msg_t *
zper_dafka_msg_new (void)
{
    zper_dafka_msg_t *self = (zper_dafka_msg_t *) zmalloc (sizeof (zper_dafka_msg_t));
    return self;
}

//  The CONSUMER_HELLO subjects list, created on first use: most messages
//  never need one, and a receiver creates messages at the record rate.
static zlist_t *
s_subjects (zper_dafka_msg_t *self)
{
    if (!self->subjects) {
        self->subjects = zlist_new ();
        zlist_autofree (self->subjects);
    }
    return self->subjects;
}

void
zper_dafka_msg_destroy (zper_dafka_msg_t **self_p)
{
    if (self_p && *self_p) {
        zper_dafka_msg_t *self = *self_p;
        zlist_destroy (&self->subjects);
        zframe_destroy (&self->content);
        free (self);
        *self_p = NULL;
    }
}

//  ---- decoding: a cursor that refuses to run past its end ------------------

typedef struct {
    const uint8_t *next;
    const uint8_t *end;
    const char *reason;             //  set on the first failure; later reads are no-ops
} s_reader_t;

static bool
s_need (s_reader_t *reader, size_t size, const char *reason)
{
    if (reader->reason)
        return false;
    if ((size_t) (reader->end - reader->next) < size) {
        reader->reason = reason;
        return false;
    }
    return true;
}

static uint64_t
s_get_number (s_reader_t *reader, int size, const char *reason)
{
    uint64_t value = 0;
    if (s_need (reader, size, reason))
        for (int index = 0; index < size; index++)
            value = (value << 8) | *reader->next++;
    return value;
}

static void
s_get_string (s_reader_t *reader, char *target, const char *reason)
{
    size_t size = (size_t) s_get_number (reader, 1, reason);
    if (s_need (reader, size, reason)) {
        memcpy (target, reader->next, size);
        target [size] = 0;
        reader->next += size;
    }
}

static void
s_get_strings (s_reader_t *reader, zlist_t *list)
{
    uint64_t count = s_get_number (reader, S_NUMBER4, "short subjects count");
    for (uint64_t index = 0; index < count && !reader->reason; index++) {
        uint64_t size = s_get_number (reader, S_NUMBER4, "short subject length");
        if (s_need (reader, size, "short subject")) {
            char *item = (char *) zmalloc (size + 1);
            memcpy (item, reader->next, size);
            reader->next += size;
            zlist_append (list, item);
            free (item);            //  the list is autofree: it kept its own copy
        }
    }
}

static int
s_decode_header (zper_dafka_msg_t *self, const uint8_t *data, size_t size)
{
    s_reader_t reader = { data, data + size, NULL };
    self->id = (int) s_get_number (&reader, 1, "empty frame");
    int fields = s_fields (self->id);
    if (!reader.reason && fields < 0)
        reader.reason = "unknown message id";
    if (!reader.reason) {
        const uint8_t *nul = memchr (reader.next, 0, reader.end - reader.next);
        if (!nul)
            reader.reason = "topic without terminator";
        else
        if (nul - reader.next > ZPER_DAFKA_STRING_MAX)
            reader.reason = "topic too long";
        else {
            memcpy (self->topic, reader.next, nul - reader.next);
            self->topic [nul - reader.next] = 0;
            reader.next = nul + 1;
        }
    }
    if (s_get_number (&reader, 1, "missing version") != ZPER_DAFKA_VERSION && !reader.reason)
        reader.reason = "unsupported version";
    if (fields & S_FIELD_ADDRESS)
        s_get_string (&reader, self->address, "short address");
    if (fields & S_FIELD_SUBJECT)
        s_get_string (&reader, self->subject, "short subject");
    if (fields & S_FIELD_SEQUENCE)
        self->sequence = s_get_number (&reader, S_NUMBER8, "short sequence");
    if (fields & S_FIELD_COUNT)
        self->count = (uint32_t) s_get_number (&reader, S_NUMBER4, "short count");
    if (fields & S_FIELD_SUBJECTS)
        s_get_strings (&reader, s_subjects (self));
    //  Trailing bytes are ignored, as the reference does (room for later versions)
    self->reason = reader.reason;
    return reader.reason? -1: 0;
}

static void
s_clear (zper_dafka_msg_t *self)
{
    self->id = 0;
    self->topic [0] = self->address [0] = self->subject [0] = 0;
    self->sequence = 0;
    self->count = 0;
    if (self->subjects)
        zlist_purge (self->subjects);
    zframe_destroy (&self->content);
    self->reason = NULL;
    self->sender [0] = 0;
    self->too_long = 0;
}

int
zper_dafka_msg_decode (zper_dafka_msg_t *self, zmsg_t **msg_p)
{
    assert (self && msg_p);
    zmsg_t *msg = *msg_p;
    *msg_p = NULL;
    s_clear (self);
    int rc = -1;
    zframe_t *header = msg? zmsg_pop (msg): NULL;
    if (!header)
        self->reason = "empty message";
    else
    if (s_decode_header (self, zframe_data (header), zframe_size (header)) == 0) {
        rc = 0;
        if (s_fields (self->id) & S_FIELD_CONTENT) {
            self->content = zmsg_pop (msg);
            if (!self->content) {
                self->reason = "missing content frame";
                rc = -1;
            }
        }
    }
    //  Extra frames are dropped with the message: the reference would misread
    //  them as the next message, we read whole messages and cannot.
    zframe_destroy (&header);
    zmsg_destroy (&msg);
    return rc;
}

//  Receives and drops the rest of a multipart message.
static void
s_drain (void *handle, bool more)
{
    while (more) {
        zmq_msg_t extra;
        zmq_msg_init (&extra);
        more = zmq_msg_recv (&extra, handle, 0) >= 0 && zmq_msg_more (&extra);
        zmq_msg_close (&extra);
    }
}

//  The hot path: frame 0 is decoded straight from libzmq's buffer and the
//  content stays a zmq_msg_t (same rules as zper_dafka_msg_decode).
int
zper_dafka_msg_recv_content (zper_dafka_msg_t *self, zsock_t *input, zmq_msg_t *content, int flags)
{
    void *handle = zsock_resolve (input);
    zmq_msg_t header;
    zmq_msg_init (&header);
    while (true) {
        if (zmq_msg_recv (&header, handle, flags) < 0) {
            zmq_msg_close (&header);
            return -1;
        }
        //  A key that left the allowed folder: the guard has shut its
        //  connection down; what it sent meanwhile goes, whole
        if (!self->guard || zper_guard_check (self->guard, &header, ZPER_GUARD_WRITE
                                              | ZPER_GUARD_READ, "", 0) != ZPER_GUARD_CUT)
            break;
        s_drain (handle, zmq_msg_more (&header));
        zmq_msg_close (&header);
        zmq_msg_init (&header);
    }
    s_clear (self);
    //  The key a CURVE server socket authenticated (zauth sets it as the
    //  User-Id): what binds a producer's uuid to its sender
    const char *sender = self->track_sender? zmq_msg_gets (&header, "User-Id"): NULL;
    if (sender)
        snprintf (self->sender, sizeof self->sender, "%s", sender);
    bool more = zmq_msg_more (&header);
    int rc = s_decode_header (self, (const uint8_t *) zmq_msg_data (&header), zmq_msg_size (&header));
    zmq_msg_close (&header);
    //  The rest of a multipart message is already there: no flags needed
    if (rc == 0 && (s_fields (self->id) & S_FIELD_CONTENT)) {
        if (!more || zmq_msg_recv (content, handle, 0) < 0) {
            self->reason = "missing content frame";
            rc = -1;
        }
        more = more && zmq_msg_more (content);
    }
    s_drain (handle, more);         //  extra frames go with their message
    if (rc)
        errno = EPROTO;
    return rc;
}

int
zper_dafka_msg_recv (zper_dafka_msg_t *self, zsock_t *input)
{
    zmq_msg_t content;
    zmq_msg_init (&content);
    int rc = zper_dafka_msg_recv_content (self, input, &content, 0);
    if (rc == 0 && (s_fields (self->id) & S_FIELD_CONTENT))
        self->content = zframe_new (zmq_msg_data (&content), zmq_msg_size (&content));
    zmq_msg_close (&content);
    return rc;
}

//  ---- encoding ------------------------------------------------------------------

static size_t
s_header_size (zper_dafka_msg_t *self, int fields)
{
    size_t size = 1 + strlen (self->topic) + 1 + 1;
    if (fields & S_FIELD_ADDRESS)
        size += 1 + strlen (self->address);
    if (fields & S_FIELD_SUBJECT)
        size += 1 + strlen (self->subject);
    if (fields & S_FIELD_SEQUENCE)
        size += S_NUMBER8;
    if (fields & S_FIELD_COUNT)
        size += S_NUMBER4;
    if (fields & S_FIELD_SUBJECTS) {
        size += S_NUMBER4;
        for (char *item = (char *) zlist_first (s_subjects (self)); item;
             item = (char *) zlist_next (self->subjects))
            size += S_NUMBER4 + strlen (item);
    }
    return size;
}

static uint8_t *
s_put_number (uint8_t *target, uint64_t value, int size)
{
    for (int index = size - 1; index >= 0; index--)
        *target++ = (uint8_t) (value >> (8 * index));
    return target;
}

static uint8_t *
s_put_bytes (uint8_t *target, const char *string, int length_size)
{
    size_t size = strlen (string);
    if (length_size)
        target = s_put_number (target, size, length_size);
    memcpy (target, string, size);
    return target + size;
}

//  Fills buffer (of s_header_size bytes) with frame 0.
static void
s_encode_header (zper_dafka_msg_t *self, int fields, uint8_t *buffer)
{
    uint8_t *target = buffer;
    *target++ = (uint8_t) self->id;
    target = s_put_bytes (target, self->topic, 0);
    *target++ = 0;
    *target++ = ZPER_DAFKA_VERSION;
    if (fields & S_FIELD_ADDRESS)
        target = s_put_bytes (target, self->address, 1);
    if (fields & S_FIELD_SUBJECT)
        target = s_put_bytes (target, self->subject, 1);
    if (fields & S_FIELD_SEQUENCE)
        target = s_put_number (target, self->sequence, S_NUMBER8);
    if (fields & S_FIELD_COUNT)
        target = s_put_number (target, self->count, S_NUMBER4);
    if (fields & S_FIELD_SUBJECTS) {
        target = s_put_number (target, zlist_size (s_subjects (self)), S_NUMBER4);
        for (char *item = (char *) zlist_first (s_subjects (self)); item;
             item = (char *) zlist_next (self->subjects))
            target = s_put_bytes (target, item, S_NUMBER4);
    }
    assert ((size_t) (target - buffer) == s_header_size (self, fields));
}

static int
s_sendable_fields (zper_dafka_msg_t *self)
{
    int fields = s_fields (self->id);
    if (fields < 0 || (self->too_long & (fields | S_FIELD_TOPIC))) {
        errno = EINVAL;
        return -1;
    }
    return fields;
}

void
zper_dafka_msg_patch_sequence (void *header, size_t size, uint64_t sequence)
{
    assert (size >= S_NUMBER8);
    s_put_number ((uint8_t *) header + size - S_NUMBER8, sequence, S_NUMBER8);
}

zframe_t *
zper_dafka_msg_encode_header (zper_dafka_msg_t *self)
{
    int fields = s_sendable_fields (self);
    if (fields < 0)
        return NULL;
    zframe_t *frame = zframe_new (NULL, s_header_size (self, fields));
    s_encode_header (self, fields, zframe_data (frame));
    return frame;
}

int
zper_dafka_msg_send_content (zper_dafka_msg_t *self, zsock_t *output, zmq_msg_t *content)
{
    int fields = s_sendable_fields (self);
    zmq_msg_t header;
    int rc = -1;
    if (fields >= 0 && zmq_msg_init_size (&header, s_header_size (self, fields)) == 0) {
        s_encode_header (self, fields, (uint8_t *) zmq_msg_data (&header));
        bool more = content && (fields & S_FIELD_CONTENT);
        rc = zmq_msg_send (&header, zsock_resolve (output), more? ZMQ_SNDMORE: 0) < 0? -1: 0;
        if (rc)
            zmq_msg_close (&header);
        else
        if (more && zmq_msg_send (content, zsock_resolve (output), 0) < 0)
            rc = -1;            //  libzmq keeps a multipart message atomic: nothing went out
    }
    if (content) {
        zmq_msg_close (content);
        zmq_msg_init (content);
    }
    return rc;
}

int
zper_dafka_msg_send (zper_dafka_msg_t *self, zsock_t *output)
{
    int fields = s_fields (self->id);
    if (fields < 0 || !(fields & S_FIELD_CONTENT))
        return zper_dafka_msg_send_content (self, output, NULL);
    size_t size = self->content? zframe_size (self->content): 0;
    zmq_msg_t content;
    if (zmq_msg_init_size (&content, size))
        return -1;
    if (size)
        memcpy (zmq_msg_data (&content), zframe_data (self->content), size);
    return zper_dafka_msg_send_content (self, output, &content);
}

//  ---- accessors -----------------------------------------------------------------

const char *
zper_dafka_msg_reason (zper_dafka_msg_t *self)
{
    return self->reason;
}

const char *
zper_dafka_msg_sender (zper_dafka_msg_t *self)
{
    return self->sender;
}

void
zper_dafka_msg_track_sender (zper_dafka_msg_t *self, bool track)
{
    self->track_sender = track;
}

void
zper_dafka_msg_set_guard (zper_dafka_msg_t *self, zper_guard_t *guard)
{
    self->guard = guard;
}

int
zper_dafka_msg_id (zper_dafka_msg_t *self)
{
    return self->id;
}

void
zper_dafka_msg_set_id (zper_dafka_msg_t *self, int id)
{
    self->id = id;
}

static void
s_set_string (zper_dafka_msg_t *self, int field, char *target, const char *value)
{
    size_t size = value? strlen (value): 0;
    self->too_long &= ~field;
    if (size > ZPER_DAFKA_STRING_MAX) {
        self->too_long |= field;
        size = 0;
    }
    memcpy (target, value, size);
    target [size] = 0;
}

const char *
zper_dafka_msg_topic (zper_dafka_msg_t *self)
{
    return self->topic;
}

void
zper_dafka_msg_set_topic (zper_dafka_msg_t *self, const char *topic)
{
    s_set_string (self, S_FIELD_TOPIC, self->topic, topic);
}

const char *
zper_dafka_msg_address (zper_dafka_msg_t *self)
{
    return self->address;
}

void
zper_dafka_msg_set_address (zper_dafka_msg_t *self, const char *address)
{
    s_set_string (self, S_FIELD_ADDRESS, self->address, address);
}

const char *
zper_dafka_msg_subject (zper_dafka_msg_t *self)
{
    return self->subject;
}

void
zper_dafka_msg_set_subject (zper_dafka_msg_t *self, const char *subject)
{
    s_set_string (self, S_FIELD_SUBJECT, self->subject, subject);
}

uint64_t
zper_dafka_msg_sequence (zper_dafka_msg_t *self)
{
    return self->sequence;
}

void
zper_dafka_msg_set_sequence (zper_dafka_msg_t *self, uint64_t sequence)
{
    self->sequence = sequence;
}

uint32_t
zper_dafka_msg_count (zper_dafka_msg_t *self)
{
    return self->count;
}

void
zper_dafka_msg_set_count (zper_dafka_msg_t *self, uint32_t count)
{
    self->count = count;
}

zlist_t *
zper_dafka_msg_subjects (zper_dafka_msg_t *self)
{
    return s_subjects (self);
}

void
zper_dafka_msg_set_subjects (zper_dafka_msg_t *self, zlist_t **subjects_p)
{
    zlist_purge (s_subjects (self));
    for (char *item = (char *) zlist_first (*subjects_p); item;
         item = (char *) zlist_next (*subjects_p))
        zlist_append (self->subjects, item);
    zlist_destroy (subjects_p);
}

zframe_t *
zper_dafka_msg_content (zper_dafka_msg_t *self)
{
    return self->content;
}

void
zper_dafka_msg_set_content (zper_dafka_msg_t *self, zframe_t **content_p)
{
    zframe_destroy (&self->content);
    self->content = *content_p;
    *content_p = NULL;
}

zframe_t *
zper_dafka_msg_take_content (zper_dafka_msg_t *self)
{
    zframe_t *content = self->content;
    self->content = NULL;
    return content;
}

void
zper_dafka_msg_print (zper_dafka_msg_t *self)
{
    zsys_debug ("dafka %c topic=%s address=%s subject=%s sequence=%" PRIu64 " count=%u"
                " subjects=%zu content=%zu", self->id? self->id: '?', self->topic, self->address,
                self->subject, self->sequence, self->count, zlist_size (s_subjects (self)),
                self->content? zframe_size (self->content): 0);
}

//  ---- FETCH filter ------------------------------------------------------------------

struct _zper_dafka_fetch_filter_t {
    zhashx_t *last_asked;           //  "subject/partition" -> s_asked_t
};

typedef struct {
    uint64_t block;
    int64_t second;
} s_asked_t;

uint32_t
zper_dafka_fetch_count (uint64_t sequence)
{
    return (uint32_t) ((sequence / ZPER_DAFKA_FETCH_BLOCK + 1) * ZPER_DAFKA_FETCH_BLOCK - sequence);
}

zper_dafka_fetch_filter_t *
zper_dafka_fetch_filter_new (void)
{
    zper_dafka_fetch_filter_t *self =
        (zper_dafka_fetch_filter_t *) zmalloc (sizeof (zper_dafka_fetch_filter_t));
    self->last_asked = zhashx_new ();
    zhashx_set_destructor (self->last_asked, (zhashx_destructor_fn *) zstr_free);
    return self;
}

void
zper_dafka_fetch_filter_destroy (zper_dafka_fetch_filter_t **self_p)
{
    if (self_p && *self_p) {
        zhashx_destroy (&(*self_p)->last_asked);
        free (*self_p);
        *self_p = NULL;
    }
}

bool
zper_dafka_fetch_filter_allow (zper_dafka_fetch_filter_t *self, const char *subject,
                               const char *partition, uint64_t sequence, int64_t now_ms)
{
    char key [2 * ZPER_DAFKA_STRING_MAX + 2];
    snprintf (key, sizeof key, "%s/%s", subject, partition);
    s_asked_t now = { sequence / ZPER_DAFKA_FETCH_BLOCK, now_ms / ZPER_DAFKA_FETCH_SUPPRESS_MS };
    s_asked_t *asked = (s_asked_t *) zhashx_lookup (self->last_asked, key);
    if (asked && asked->block == now.block && asked->second == now.second)
        return false;
    if (!asked) {
        asked = (s_asked_t *) zmalloc (sizeof (s_asked_t));
        zhashx_insert (self->last_asked, key, asked);
    }
    *asked = now;
    return true;
}

void
zper_dafka_fetch_filter_forget (zper_dafka_fetch_filter_t *self, const char *subject,
                                const char *partition)
{
    char key [2 * ZPER_DAFKA_STRING_MAX + 2];
    snprintf (key, sizeof key, "%s/%s", subject, partition);
    zhashx_delete (self->last_asked, key);
}

//  ---- selftest ------------------------------------------------------------------

#define S_UUID_A "B831E5A5C0DE4F1E9A6B7C8D9E0F8885"
#define S_UUID_B "5363A1B2C3D4E5F60718293A4B5CCA6C"

//  Encodes msg and checks frame 0 against the captured bytes.
static void
s_expect_header (zper_dafka_msg_t *msg, const char *expected, size_t size)
{
    zframe_t *header = zper_dafka_msg_encode_header (msg);
    assert (header);
    assert (zframe_size (header) == size);
    assert (memcmp (zframe_data (header), expected, size) == 0);
    zframe_destroy (&header);
}

//  Decodes the raw frames and returns the decoder's verdict.
static int
s_decode_raw (zper_dafka_msg_t *msg, const void *header, size_t size, const char *content)
{
    zmsg_t *raw = zmsg_new ();
    zmsg_addmem (raw, header, size);
    if (content)
        zmsg_addstr (raw, content);
    return zper_dafka_msg_decode (msg, &raw);
}

static void
s_test_captured_examples (void)
{
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    //  RECORD, 55 B
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_RECORD);
    zper_dafka_msg_set_topic (msg, "hello");
    zper_dafka_msg_set_address (msg, S_UUID_A);
    zper_dafka_msg_set_subject (msg, "hello");
    zper_dafka_msg_set_sequence (msg, 0);
    const char record [] = "\x4d" "hello" "\x00" "\x01" "\x20" S_UUID_A "\x05" "hello"
                           "\x00\x00\x00\x00\x00\x00\x00\x00";
    assert (sizeof record - 1 == 55);
    s_expect_header (msg, record, sizeof record - 1);
    assert (s_decode_raw (msg, record, sizeof record - 1, "A first event") == 0);
    assert (zper_dafka_msg_id (msg) == ZPER_DAFKA_RECORD);
    assert (streq (zper_dafka_msg_topic (msg), "hello"));
    assert (streq (zper_dafka_msg_address (msg), S_UUID_A));
    assert (zframe_streq (zper_dafka_msg_content (msg), "A first event"));

    //  FETCH, 86 B, count 100000
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_FETCH);
    zper_dafka_msg_set_topic (msg, S_UUID_A);
    zper_dafka_msg_set_address (msg, S_UUID_B);
    zper_dafka_msg_set_subject (msg, "hello");
    zper_dafka_msg_set_sequence (msg, 0);
    zper_dafka_msg_set_count (msg, zper_dafka_fetch_count (0));
    const char fetch [] = "\x46" S_UUID_A "\x00" "\x01" "\x20" S_UUID_B "\x05" "hello"
                          "\x00\x00\x00\x00\x00\x00\x00\x00" "\x00\x01\x86\xa0";
    assert (sizeof fetch - 1 == 86);
    s_expect_header (msg, fetch, sizeof fetch - 1);
    assert (s_decode_raw (msg, fetch, sizeof fetch - 1, NULL) == 0);
    assert (zper_dafka_msg_count (msg) == 100000);
    assert (streq (zper_dafka_msg_address (msg), S_UUID_B));

    //  ACK, 49 B, sequence 1
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_ACK);
    zper_dafka_msg_set_topic (msg, S_UUID_A);
    zper_dafka_msg_set_subject (msg, "hello");
    zper_dafka_msg_set_sequence (msg, 1);
    const char ack [] = "\x4b" S_UUID_A "\x00" "\x01" "\x05" "hello"
                        "\x00\x00\x00\x00\x00\x00\x00\x01";
    assert (sizeof ack - 1 == 49);
    s_expect_header (msg, ack, sizeof ack - 1);
    assert (s_decode_raw (msg, ack, sizeof ack - 1, NULL) == 0);
    assert (zper_dafka_msg_sequence (msg) == 1);

    //  CONSUMER_HELLO, 72 B, no subjects
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_CONSUMER_HELLO);
    zper_dafka_msg_set_topic (msg, S_UUID_A);
    zper_dafka_msg_set_address (msg, S_UUID_B);
    const char hello [] = "\x57" S_UUID_A "\x00" "\x01" "\x20" S_UUID_B "\x00\x00\x00\x00";
    assert (sizeof hello - 1 == 72);
    s_expect_header (msg, hello, sizeof hello - 1);
    assert (s_decode_raw (msg, hello, sizeof hello - 1, NULL) == 0);
    assert (zlist_size (zper_dafka_msg_subjects (msg)) == 0);
    zper_dafka_msg_destroy (&msg);
}

static void
s_test_malformed (void)
{
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    const char record [] = "\x4d" "hello" "\x00" "\x01" "\x20" S_UUID_A "\x05" "hello"
                           "\x00\x00\x00\x00\x00\x00\x00\x00";
    const char bad_version [] = "\x48" "t" "\x00" "\x02" "\x01" "A" "\x01" "t"
                                "\x00\x00\x00\x00\x00\x00\x00\x00";
    const char unknown_id [] = "\x5a" "t" "\x00" "\x01";
    const char no_nul [] = "\x48" "topic";
    const char huge_strings [] = "\x57" "x" "\x00" "\x01" "\x01" "A" "\x7f\xff\xff\xff"
                                 "\x00\x00\x00\x10" "ab";
    assert (s_decode_raw (msg, record, sizeof record - 1, NULL) == -1);
    assert (streq (zper_dafka_msg_reason (msg), "missing content frame"));
    assert (s_decode_raw (msg, bad_version, sizeof bad_version - 1, NULL) == -1);
    assert (streq (zper_dafka_msg_reason (msg), "unsupported version"));
    assert (s_decode_raw (msg, unknown_id, sizeof unknown_id - 1, NULL) == -1);
    assert (s_decode_raw (msg, no_nul, sizeof no_nul - 1, NULL) == -1);
    assert (s_decode_raw (msg, huge_strings, sizeof huge_strings - 1, NULL) == -1);
    assert (s_decode_raw (msg, "", 0, NULL) == -1);
    //  Every truncation of a good header is refused, never read past
    for (size_t size = 0; size < sizeof record - 1; size++)
        assert (s_decode_raw (msg, record, size, "content") == -1);
    //  Trailing bytes are ignored
    char longer [sizeof record + 3];
    memcpy (longer, record, sizeof record - 1);
    memcpy (longer + sizeof record - 1, "xyz", 3);
    assert (s_decode_raw (msg, longer, sizeof longer - 1, "c") == 0);
    //  A string the wire cannot carry is refused at send time
    char too_long [ZPER_DAFKA_STRING_MAX + 2];
    memset (too_long, 'a', sizeof too_long - 1);
    too_long [sizeof too_long - 1] = 0;
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_HEAD);
    zper_dafka_msg_set_subject (msg, too_long);
    assert (zper_dafka_msg_encode_header (msg) == NULL);
    zper_dafka_msg_set_subject (msg, "fits");
    zframe_t *header = zper_dafka_msg_encode_header (msg);
    assert (header);
    zframe_destroy (&header);
    zper_dafka_msg_destroy (&msg);
}

static void
s_test_round_trip (void)
{
    zsock_t *output = zsock_new_pair ("@inproc://zper-dafka-proto-test");
    zsock_t *input = zsock_new_pair (">inproc://zper-dafka-proto-test");
    zper_dafka_msg_t *msg = zper_dafka_msg_new ();
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_CONSUMER_HELLO);
    zper_dafka_msg_set_topic (msg, S_UUID_A);
    zper_dafka_msg_set_address (msg, S_UUID_B);
    zlist_t *subjects = zlist_new ();
    zlist_append (subjects, "alpha");
    zlist_append (subjects, "beta");
    zper_dafka_msg_set_subjects (msg, &subjects);
    assert (zper_dafka_msg_send (msg, output) == 0);
    zper_dafka_msg_set_id (msg, ZPER_DAFKA_DIRECT_RECORD);
    zper_dafka_msg_set_sequence (msg, 300);
    zframe_t *content = zframe_new ("payload", 7);
    zper_dafka_msg_set_content (msg, &content);
    assert (zper_dafka_msg_send (msg, output) == 0);

    zper_dafka_msg_t *received = zper_dafka_msg_new ();
    assert (zper_dafka_msg_recv (received, input) == 0);
    assert (zper_dafka_msg_id (received) == ZPER_DAFKA_CONSUMER_HELLO);
    assert (zlist_size (zper_dafka_msg_subjects (received)) == 2);
    assert (streq ((char *) zlist_first (zper_dafka_msg_subjects (received)), "alpha"));
    assert (zper_dafka_msg_recv (received, input) == 0);
    assert (zper_dafka_msg_id (received) == ZPER_DAFKA_DIRECT_RECORD);
    assert (zper_dafka_msg_sequence (received) == 300);
    assert (zframe_streq (zper_dafka_msg_content (received), "payload"));
    zper_dafka_msg_destroy (&received);
    zper_dafka_msg_destroy (&msg);
    zsock_destroy (&input);
    zsock_destroy (&output);
}

static void
s_test_fetch_filter (void)
{
    assert (zper_dafka_fetch_count (0) == 100000);
    assert (zper_dafka_fetch_count (99999) == 1);
    assert (zper_dafka_fetch_count (100000) == 100000);
    assert (zper_dafka_fetch_count (100001) == 99999);
    zper_dafka_fetch_filter_t *filter = zper_dafka_fetch_filter_new ();
    assert (zper_dafka_fetch_filter_allow (filter, "t", S_UUID_A, 5, 1000));
    assert (!zper_dafka_fetch_filter_allow (filter, "t", S_UUID_A, 7, 1500));
    assert (zper_dafka_fetch_filter_allow (filter, "t", S_UUID_B, 7, 1500));
    assert (zper_dafka_fetch_filter_allow (filter, "t", S_UUID_A, 100000, 1600));
    assert (zper_dafka_fetch_filter_allow (filter, "t", S_UUID_A, 100000, 2000));
    zper_dafka_fetch_filter_forget (filter, "t", S_UUID_A);
    assert (zper_dafka_fetch_filter_allow (filter, "t", S_UUID_A, 100000, 2000));
    zper_dafka_fetch_filter_destroy (&filter);
    zper_dafka_fetch_filter_destroy (&filter);
}

void
zper_dafka_proto_test (bool verbose)
{
    s_test_captured_examples ();
    s_test_malformed ();
    s_test_round_trip ();
    s_test_fetch_filter ();
}
