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
                          CREDIT / STALL (offset) / GONE  [env]   (stream flow control)
        worker -> thread  REPLY [env][frames...]
                          STREAMED (offset) [env][frames...]      one streamed message
                          CHUNK_END [env]                         asks for credit
    A worker sends one chunk of a stream, then waits for the thread's
    CREDIT (all sent), STALL (the reader's queue was full at offset: resend
    from there later) or GONE (the reader disconnected).
    ========================================================================= */

#ifndef ZPER_REAR_H_INCLUDED
#define ZPER_REAR_H_INCLUDED

#include "zper_broker.h"
#include "zper_identity.h"
#include "zper_partition.h"

#define ZPER_INPROC_REAR_REPLIES    "inproc://zper-rear-replies"

typedef enum {
    ZPER_REAR_REQUEST = 'Q',
    ZPER_REAR_CREDIT = 'C',
    ZPER_REAR_STALL = 'S',
    ZPER_REAR_GONE = 'G',
    ZPER_REAR_REPLY = 'R',
    ZPER_REAR_STREAMED = 'M',
    ZPER_REAR_CHUNK_END = 'E'
} zper_rear_kind_t;

typedef struct {
    uint8_t kind;                       //  zper_rear_kind_t
    uint8_t envelope_frames;            //  1 (DEALER) or 2 (REQ: routing id + delimiter)
    int64_t offset;                     //  STREAMED, STALL: a logical offset
} zper_rear_header_t;

//  What a command asks of the worker once its reply is decided.
typedef enum {
    ZPER_REAR_ANSWERED,                 //  reply is complete
    ZPER_REAR_STREAM,                   //  reply [100], then stream from continuation.offset
    ZPER_REAR_WAIT                      //  long poll: answer when continuation's topic moves
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

//  Execute one request (zper_rear_command.c). routing_id gives the topic of
//  legacy commands; request holds [command][args...] and is not consumed;
//  is_req says the reader is a REQ socket (one reply only). Fills reply
//  (reply->frames must be an empty zmsg) and, for STREAM and WAIT, the
//  continuation.
zper_rear_outcome_t
    zper_rear_command_execute (zper_broker_t *broker, zframe_t *routing_id, zmsg_t *request,
                               bool is_req, zper_rear_reply_t *reply,
                               zper_rear_continuation_t *continuation);

//  Fill reply with a READ answer: [100][batch] of the durable messages of
//  topic from offset (an empty batch at the end), or [101].
void
    zper_rear_command_read (zper_broker_t *broker, const char *topic, int64_t offset,
                            int32_t max_bytes, zper_rear_reply_t *reply);

//  Lend the frames of message (from view) as zero-copy zmq_msg_t's into
//  frames, which must hold message->frame_count entries. Returns the count
//  of frames initialised (each must be sent or closed).
size_t
    zper_rear_lend_frames (zper_view_t *view, const zper_message_t *message, zmq_msg_t *frames);

//  Self test of this class
void
    zper_rear_test (bool verbose);

#endif
