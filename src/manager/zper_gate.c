/*  =========================================================================
    zper_gate - the subscriptions a CURVE XPUB lets through

    What libzmq 4.3 does in manual mode (src/xpub.cpp) decides the design:
      - every subscribe and unsubscribe of every subscriber comes up, not
        only a prefix's first and last, so the gate counts subscribers per
        prefix and tells zper_subscriptions only of 0 -> 1 and 1 -> 0;
      - ZMQ_SUBSCRIBE / ZMQ_UNSUBSCRIBE act on the subscriber of the message
        just received, so they are called at once;
      - a subscriber that goes away sends up an unsubscription, without
        metadata, for every subscription it sent, refused ones included.
    So a refused subscription is counted too (refused), and an
    unsubscription nobody can attribute takes a refused one first: until
    every subscriber of a prefix has gone, a prefix may read as wanted a
    little longer than it is (a publisher then builds a message nobody
    receives), never the reverse, so no allowed subscriber misses anything.
    ========================================================================= */

#include "zper_gate.h"
#include <assert.h>

typedef struct {
    size_t applied;                     //  subscriptions applied to the socket
    size_t refused;                     //  subscriptions refused, not yet unsubscribed
} prefix_counts_t;

struct _zper_gate_t {
    void *xpub;
    zper_subscriptions_t *subscriptions;
    int access;
    zhashx_t *prefixes;                 //  hex prefix -> prefix_counts_t
};

static void
s_counts_destroy (void **item)
{
    freen (*item);
    *item = NULL;
}

zper_gate_t *
zper_gate_new (void *xpub, zper_subscriptions_t *subscriptions, int access)
{
    assert (xpub && subscriptions);
    zper_gate_t *self = (zper_gate_t *) zmalloc (sizeof (zper_gate_t));
    self->xpub = xpub;
    self->subscriptions = subscriptions;
    self->access = access;
    self->prefixes = zhashx_new ();
    zhashx_set_destructor (self->prefixes, s_counts_destroy);
    int manual = 1;
    int rc = zmq_setsockopt (xpub, ZMQ_XPUB_MANUAL, &manual, sizeof manual);
    assert (rc == 0);
    return self;
}

void
zper_gate_destroy (zper_gate_t **self_p)
{
    assert (self_p);
    zper_gate_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->prefixes);
        freen (self);
        *self_p = NULL;
    }
}

//  The counts of a prefix, created empty.
static prefix_counts_t *
s_counts (zper_gate_t *self, const char *key)
{
    prefix_counts_t *counts = (prefix_counts_t *) zhashx_lookup (self->prefixes, key);
    if (!counts) {
        counts = (prefix_counts_t *) zmalloc (sizeof (prefix_counts_t));
        zhashx_insert (self->prefixes, key, counts);
    }
    return counts;
}

static int
s_apply (zper_gate_t *self, zmq_msg_t *msg, zper_guard_t *guard)
{
    const uint8_t *data = (const uint8_t *) zmq_msg_data (msg);
    size_t size = zmq_msg_size (msg);
    if (size == 0 || data [0] > 1)
        return ZPER_GUARD_ALLOWED;      //  not a subscription: nothing to apply
    bool subscribe = data [0] == 1;
    const char *prefix = (const char *) data + 1;
    size_t prefix_size = size - 1;
    char *key = (char *) zmalloc (2 * prefix_size + 1);
    for (size_t index = 0; index < prefix_size; index++)
        snprintf (key + 2 * index, 3, "%02x", (uint8_t) prefix [index]);
    prefix_counts_t *counts = s_counts (self, key);
    int verdict = ZPER_GUARD_ALLOWED;
    if (subscribe) {
        verdict = guard? zper_guard_check_prefix (guard, msg, self->access, prefix, prefix_size)
                       : ZPER_GUARD_ALLOWED;
        if (verdict == ZPER_GUARD_ALLOWED) {
            zmq_setsockopt (self->xpub, ZMQ_SUBSCRIBE, prefix, prefix_size);
            if (counts->applied++ == 0)
                zper_subscriptions_apply (self->subscriptions, data, size);
        }
        else
            counts->refused++;
    }
    else {
        //  Acts only on the subscriber that sent it, if it still holds it
        zmq_setsockopt (self->xpub, ZMQ_UNSUBSCRIBE, prefix, prefix_size);
        if (counts->refused)
            counts->refused--;
        else
        if (counts->applied && --counts->applied == 0)
            zper_subscriptions_apply (self->subscriptions, data, size);
    }
    if (counts->applied == 0 && counts->refused == 0)
        zhashx_delete (self->prefixes, key);
    freen (key);
    return verdict;
}

int
zper_gate_recv (zper_gate_t *self, zper_guard_t *guard)
{
    assert (self);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    int verdict = zmq_msg_recv (&msg, self->xpub, ZMQ_DONTWAIT) == -1? -1
                : s_apply (self, &msg, guard);
    zmq_msg_close (&msg);
    return verdict;
}

//  --------------------------------------------------------------------------
//  Selftest: real SUB sockets over inproc (no CURVE: every key is allowed,
//  so this proves the counting; tests/broker/test_security.py the refusals)

//  Let the gate take what is waiting, then say whether topic is wanted.
static bool
s_test_wanted (zper_gate_t *gate, zsock_t *xpub, zper_subscriptions_t *subscriptions,
               const char *topic, bool wanted)
{
    zper_subscriptions_cache_t cache = { 0 };
    for (int attempt = 0; attempt < 500; attempt++) {
        while (zper_gate_recv (gate, NULL) != -1)
            ;
        if (zper_subscriptions_wanted (subscriptions, topic, &cache) == wanted)
            return true;
        zclock_sleep (10);
    }
    return false;
}

void
zper_gate_test (bool verbose)
{
    zper_subscriptions_t *subscriptions = zper_subscriptions_new ();
    zsock_t *xpub = zsock_new (ZMQ_XPUB);
    zper_gate_t *gate = zper_gate_new (zsock_resolve (xpub), subscriptions, ZPER_GUARD_READ);
    assert (zsock_bind (xpub, "inproc://zper-gate-test") == 0);
    zsock_t *first = zsock_new_sub (">inproc://zper-gate-test", "ord");
    zsock_t *second = zsock_new_sub (">inproc://zper-gate-test", "ord");
    zsock_set_rcvtimeo (first, 5000);
    assert (s_test_wanted (gate, xpub, subscriptions, "orders", true));
    //  The applied subscription reaches the subscriber (manual mode)
    zclock_sleep (50);
    while (zper_gate_recv (gate, NULL) != -1)
        ;
    zstr_sendx (xpub, "orders", "body", NULL);
    char *topic, *body;
    assert (zstr_recvx (first, &topic, &body, NULL) == 2 && streq (body, "body"));
    zstr_free (&topic);
    zstr_free (&body);
    //  One of two subscribers leaving keeps the prefix wanted; both, not
    zsock_destroy (&first);
    zclock_sleep (100);
    assert (s_test_wanted (gate, xpub, subscriptions, "orders", true));
    zsock_set_unsubscribe (second, "ord");
    assert (s_test_wanted (gate, xpub, subscriptions, "orders", false));
    zsock_destroy (&second);
    assert (zhashx_size (gate->prefixes) == 0);

    zper_gate_destroy (&gate);
    zper_gate_destroy (&gate);
    zsock_destroy (&xpub);
    zper_subscriptions_destroy (&subscriptions);
}
