/*  =========================================================================
    zper_subscriptions - which topics the subscribers of an XPUB socket want

    A list of prefixes under a mutex, and a generation counter that moves
    on every change. An asker's cache holds the generation it was answered
    from; while the counter has not moved, the answer stands and asking
    costs one atomic load. Subscriptions change rarely (a subscriber comes
    or goes), messages flow constantly, so a list is fast enough.
    ========================================================================= */

#include "zper_subscriptions.h"
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>

struct _zper_subscriptions_t {
    pthread_mutex_t mutex;
    zlistx_t *prefixes;                 //  of zframe_t, each once
    atomic_uint_fast64_t generation;    //  starts at 1: a zeroed cache is stale
};

static void
s_frame_destroy (void **item)
{
    zframe_destroy ((zframe_t **) item);
}

static int
s_frame_compare (const void *item1, const void *item2)
{
    return zframe_eq ((zframe_t *) item1, (zframe_t *) item2)? 0: 1;
}

zper_subscriptions_t *
zper_subscriptions_new (void)
{
    zper_subscriptions_t *self = (zper_subscriptions_t *) zmalloc (sizeof (zper_subscriptions_t));
    pthread_mutex_init (&self->mutex, NULL);
    self->prefixes = zlistx_new ();
    zlistx_set_destructor (self->prefixes, s_frame_destroy);
    zlistx_set_comparator (self->prefixes, s_frame_compare);
    atomic_init (&self->generation, 1);
    return self;
}

void
zper_subscriptions_destroy (zper_subscriptions_t **self_p)
{
    assert (self_p);
    zper_subscriptions_t *self = *self_p;
    if (self) {
        zlistx_destroy (&self->prefixes);
        pthread_mutex_destroy (&self->mutex);
        freen (self);
        *self_p = NULL;
    }
}

int
zper_subscriptions_apply (zper_subscriptions_t *self, const void *data, size_t size)
{
    assert (self);
    const uint8_t *bytes = (const uint8_t *) data;
    if (size == 0 || bytes [0] > 1)
        return -1;
    bool subscribe = bytes [0] == 1;
    zframe_t *prefix = zframe_new (bytes + 1, size - 1);
    pthread_mutex_lock (&self->mutex);
    void *handle = zlistx_find (self->prefixes, prefix);
    if (subscribe && !handle) {
        zlistx_add_end (self->prefixes, prefix);
        prefix = NULL;
    }
    else
    if (!subscribe && handle)
        zlistx_delete (self->prefixes, handle);
    atomic_fetch_add (&self->generation, 1);
    pthread_mutex_unlock (&self->mutex);
    zframe_destroy (&prefix);
    return 0;
}

int
zper_subscriptions_recv (zper_subscriptions_t *self, void *xpub)
{
    zmq_msg_t message;
    zmq_msg_init (&message);
    int rc = zmq_msg_recv (&message, xpub, 0) == -1? -1
           : zper_subscriptions_apply (self, zmq_msg_data (&message), zmq_msg_size (&message));
    zmq_msg_close (&message);
    return rc;
}

void
zper_subscriptions_clear (zper_subscriptions_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    zlistx_purge (self->prefixes);
    atomic_fetch_add (&self->generation, 1);
    pthread_mutex_unlock (&self->mutex);
}

bool
zper_subscriptions_wanted (zper_subscriptions_t *self, const char *topic,
                           zper_subscriptions_cache_t *cache)
{
    assert (self);
    if (cache->generation == atomic_load (&self->generation))
        return cache->wanted;
    size_t topic_size = strlen (topic);
    pthread_mutex_lock (&self->mutex);
    cache->generation = atomic_load (&self->generation);
    cache->wanted = false;
    for (zframe_t *prefix = (zframe_t *) zlistx_first (self->prefixes); prefix && !cache->wanted;
         prefix = (zframe_t *) zlistx_next (self->prefixes))
        cache->wanted = zframe_size (prefix) <= topic_size
                     && memcmp (zframe_data (prefix), topic, zframe_size (prefix)) == 0;
    pthread_mutex_unlock (&self->mutex);
    return cache->wanted;
}

//  --------------------------------------------------------------------------
//  Selftest: a real XPUB and SUB sockets over inproc

//  Wait (bounded) until the set answers wanted for topic.
static bool
s_test_settles (zper_subscriptions_t *self, zsock_t *xpub, const char *topic, bool wanted)
{
    zper_subscriptions_cache_t cache = { 0 };
    for (int attempt = 0; attempt < 100; attempt++) {
        if (zsock_events (xpub) & ZMQ_POLLIN)
            zper_subscriptions_recv (self, zsock_resolve (xpub));
        else
        if (zper_subscriptions_wanted (self, topic, &cache) == wanted)
            return true;
        else
            zclock_sleep (10);
    }
    return false;
}

size_t
zper_subscriptions_size (zper_subscriptions_t *self)
{
    assert (self);
    pthread_mutex_lock (&self->mutex);
    size_t size = zlistx_size (self->prefixes);
    pthread_mutex_unlock (&self->mutex);
    return size;
}

void
zper_subscriptions_test (bool verbose)
{
    zper_subscriptions_t *self = zper_subscriptions_new ();
    zper_subscriptions_cache_t cache = { 0 };
    assert (!zper_subscriptions_wanted (self, "orders", &cache));

    zsock_t *xpub = zsock_new_xpub ("inproc://zper-subscriptions-test");
    zsock_t *first = zsock_new_sub (">inproc://zper-subscriptions-test", "ord");
    zsock_t *second = zsock_new_sub (">inproc://zper-subscriptions-test", "ord");
    assert (s_test_settles (self, xpub, "orders", true));
    assert (!zper_subscriptions_wanted (self, "or", &cache));          //  shorter than the prefix
    assert (!zper_subscriptions_wanted (self, "payments", &cache));
    //  One of two subscribers to a prefix leaves: still wanted
    zsock_destroy (&first);
    zclock_sleep (50);
    assert (s_test_settles (self, xpub, "orders", true));
    zsock_destroy (&second);
    assert (s_test_settles (self, xpub, "orders", false));
    //  The empty prefix matches everything
    zsock_t *all = zsock_new_sub (">inproc://zper-subscriptions-test", "");
    assert (s_test_settles (self, xpub, "payments", true));
    assert (zper_subscriptions_size (self) == 1);
    zper_subscriptions_clear (self);
    assert (!zper_subscriptions_wanted (self, "payments", &cache));
    assert (zper_subscriptions_size (self) == 0);
    //  Not a subscription message: refused, nothing changes
    assert (zper_subscriptions_apply (self, "\x02x", 2) == -1);
    assert (zper_subscriptions_apply (self, "", 0) == -1);
    assert (!zper_subscriptions_wanted (self, "payments", &cache));

    zsock_destroy (&all);
    zsock_destroy (&xpub);
    zper_subscriptions_destroy (&self);
    zper_subscriptions_destroy (&self);         //  idempotent
    if (verbose)
        zsys_info ("zper_subscriptions: OK");
}
