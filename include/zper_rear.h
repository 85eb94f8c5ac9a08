/*  =========================================================================
    zper_rear - the read side of the broker (rear, default :5556)

    A ROUTER socket takes requests from DEALER and REQ readers; rear.workers
    worker threads answer them (docs/protocol.md section 3). A reader is
    always served by the same worker (chosen from its routing id), because
    a streaming FETCH is state that lives in that worker until the reader
    sends another command or goes away.

    Internally the rear thread and its workers exchange messages that start
    with a zper_rear_header_t frame (same process, so native byte order):
        thread -> worker  REQUEST [env][command][args...]
                          CREDIT / GONE (stream) [env]    (stream flow control)
        worker -> thread  REPLY [env][frames...]
                          CHUNK (stream) [env][topic][view]   a window of a stream
                          DROP (stream) [env]             the stream ended (a new request)
    (A stream's envelope is the routing id alone: streams are DEALER only.)
    A REQUEST hands the worker, with security on, the sender's frame (a
    pointer in the header: zper_rear_header_t.sender). A CHUNK hands the
    thread a zper_view_t (its pointer, as a frame): the
    thread now owns it, sends its messages to the reader one ZeroMQ message
    each (pointing into the view's mapping, zper_rear.c), and destroys it. A worker has at
    most one chunk of a stream with the thread: the thread answers CREDIT
    once every message of it is queued for the reader (after retrying, on
    its own timer, while the reader's queue is full), or GONE when the
    reader disconnected. stream numbers the worker's streams, so that an
    answer about a stream that has since ended is recognised and ignored;
    DROP tells the thread to forget a chunk of a stream that ended (it
    precedes the answer to the request that ended it).
    ========================================================================= */

#ifndef ZPER_REAR_H_INCLUDED
#define ZPER_REAR_H_INCLUDED

#include "zper_broker.h"
#include "zper_identity.h"
#include "zper_partition.h"
#include "zper_output.h"

#define ZPER_INPROC_REAR_REPLIES    "inproc://zper-rear-replies"

typedef enum {
    ZPER_REAR_REQUEST = 'Q',
    ZPER_REAR_CREDIT = 'C',
    ZPER_REAR_GONE = 'G',
    ZPER_REAR_REPLY = 'R',
    ZPER_REAR_CHUNK = 'K',
    ZPER_REAR_DROP = 'D'
} zper_rear_kind_t;

typedef struct {
    uint8_t kind;                       //  zper_rear_kind_t
    uint8_t envelope_frames;            //  1 (DEALER) or 2 (REQ: routing id + delimiter)
    uint32_t stream;                    //  CHUNK, DROP, CREDIT, GONE: the worker's stream number
    zmq_msg_t *sender;                  //  REQUEST, security on: the request's first frame after
                                        //  the routing id as libzmq gave it (it carries the key,
                                        //  which an inproc send drops); the worker closes and
                                        //  frees it. NULL with security off
} zper_rear_header_t;

//  What a command asks of the worker once its reply is decided.
typedef enum {
    ZPER_REAR_ANSWERED,                 //  reply is complete
    ZPER_REAR_STREAM,                   //  reply [100], then stream from continuation.offset
    ZPER_REAR_WAIT,                     //  long poll: answer when continuation's topic moves
    ZPER_REAR_SILENT                    //  no reply: the key was cut off (security)
} zper_rear_outcome_t;

typedef struct {
    char topic [ZPER_TOPIC_NAME_MAX + 1];
    int64_t offset;
    int32_t max_bytes;
    int64_t deadline_ms;                //  WAIT: monotonic clock
} zper_rear_continuation_t;

//  A reply under construction: frames, then optionally one frame lent
//  (zero-copy) from a log view.
typedef struct {
    zmsg_t *frames;
    zmq_msg_t lent;
    bool has_lent;
} zper_rear_reply_t;

//  The rear actor. args is the zper_broker_t.
void
    zper_rear_actor (zsock_t *pipe, void *args);

typedef struct {
    zper_broker_t *broker;
    size_t index;
} zper_rear_worker_args_t;

//  One rear worker (zper_rear_worker.c). args is a zper_rear_worker_args_t.
void
    zper_rear_worker_actor (zsock_t *pipe, void *args);

//  Who sent a request, for its permissions: with security on, the worker's
//  guard and the request's first frame after the routing id as libzmq gave
//  it (it carries the key); sender is NULL with security off.
typedef struct {
    zper_guard_t *guard;
    zmq_msg_t *sender;
} zper_rear_access_t;

//  Execute one request (zper_rear_command.c). routing_id gives the topic of
//  legacy commands; request holds [command][args...] and is not consumed;
//  is_req says the reader is a REQ socket (one reply only). A command naming
//  a topic needs read access to it (else 109, or SILENT for a key cut off);
//  TOPICS and STATS list only the topics the key may read. Fills reply
//  (reply->frames must be an empty zmsg) and, for STREAM and WAIT, the
//  continuation.
zper_rear_outcome_t
    zper_rear_command_execute (zper_broker_t *broker, zframe_t *routing_id, zmsg_t *request,
                               bool is_req, zper_rear_access_t *access,
                               zper_rear_reply_t *reply, zper_rear_continuation_t *continuation);

//  Fill reply with a READ answer: [100][batch] of the visible messages of
//  topic from offset (an empty batch at the end), or [101].
void
    zper_rear_command_read (zper_broker_t *broker, const char *topic, int64_t offset,
                            int32_t max_bytes, zper_rear_reply_t *reply);

//  ---- shared by the rear thread, its workers and the relay ------------------

//  A view of up to max_bytes of partition's visible messages from *offset,
//  for a reader that follows a topic (a streaming FETCH, a relay reader).
//  A reader that fell behind retention resumes at the oldest retained
//  message (docs/protocol.md 3.1): *offset moves there. Returns NULL when
//  there is nothing to send yet: partition is NULL (the topic has none
//  yet), *offset is at the visible end, or the log refused the read.
zper_view_t *
    zper_rear_follow (zper_partition_t *partition, int64_t *offset, size_t max_bytes);

//  When to try a reader whose send queue was full again. Zero it at first.
typedef struct {
    int wait_ms;                        //  the current interval
    int64_t at_ms;                      //  monotonic time of the next try
} zper_rear_retry_t;

//  Schedule retry's next try: min_ms from now when the last try moved the
//  reader on (or at first), else twice the last interval, at most max_ms.
//  Returns retry->at_ms.
int64_t
    zper_rear_retry_schedule (zper_rear_retry_t *retry, bool progress, int min_ms, int max_ms);

//  Send one stored message (from view) on socket as [prefix][frames...]:
//  the prefix frame (a ROUTER's routing id) without blocking, then the
//  message's original frames (zper_rear_send_frames), charged to output
//  when it is not NULL. Returns 0, or -1 with the libzmq errno when the
//  prefix could not be queued (EAGAIN: the peer's queue or its output
//  budget is full; EHOSTUNREACH: a ROUTER peer is gone): then nothing of
//  the message was sent.
int
    zper_rear_send_message (void *socket, const void *prefix, size_t prefix_size,
                            zper_view_t *view, const zper_message_t *message,
                            zper_output_t *output);

//  The frame at *cursor of a stored message (start at message->data), and
//  *cursor moved past it. The log checksummed the message, so its frames
//  decode; one that did not would read as an empty frame.
static inline zper_frame_t
zper_rear_frame_next (const zper_message_t *message, const uint8_t **cursor)
{
    zper_frame_t frame;
    bool more;
    if (zper_zmtp_decode (cursor, message->data + message->size, &frame, &more))
        frame = (zper_frame_t) { NULL, 0 };
    return frame;
}

//  Send a stored message's original frames on socket, after a prefix frame
//  the caller queued: lent from the view's mapping (small frames copied,
//  which costs less than a lent reference), the message charged to output in steps
//  (its data, and one frame more for the prefix) when it is not NULL.
void
    zper_rear_send_frames (void *socket, zper_view_t *view, const zper_message_t *message,
                           zper_output_t *output);

//  Self test of this class
void
    zper_rear_test (bool verbose);

#endif
