/*  =========================================================================
    zper_subscriptions - which topics the subscribers of an XPUB socket want

    The set of prefixes an XPUB socket's subscribers hold, kept from its
    subscription messages, so that a publisher builds nothing for topics
    nobody listens to (acks, relayed messages). Thread-safe: one thread
    feeds it from the socket, any thread asks. Asking is cheap: each asker
    keeps a cache per topic, answered again only after the set changed.
    ========================================================================= */

#ifndef ZPER_SUBSCRIPTIONS_H_INCLUDED
#define ZPER_SUBSCRIPTIONS_H_INCLUDED

#include <czmq.h>

typedef struct _zper_subscriptions_t zper_subscriptions_t;

//  What an asker remembers of one topic; zero it at first.
typedef struct {
    uint64_t generation;                //  of the set it was answered from
    bool wanted;
} zper_subscriptions_cache_t;

//  An empty set.
zper_subscriptions_t *
    zper_subscriptions_new (void);

void
    zper_subscriptions_destroy (zper_subscriptions_t **self_p);

//  Apply one subscription message of an XPUB socket: [1][prefix]
//  subscribes, [0][prefix] unsubscribes. libzmq passes only a prefix's
//  first subscription and its last unsubscription (also those of a
//  subscriber that went away), so the set is exact. Returns 0, or -1 for a
//  message that is neither (ignored).
int
    zper_subscriptions_apply (zper_subscriptions_t *self, const void *data, size_t size);

//  Receive one message from the XPUB socket and apply it. Returns 0 or -1.
int
    zper_subscriptions_recv (zper_subscriptions_t *self, void *xpub);

//  Forget every subscription (the socket is gone).
void
    zper_subscriptions_clear (zper_subscriptions_t *self);

//  True when a prefix in the set matches topic, as an XPUB matches the
//  topic frame of a message.
bool
    zper_subscriptions_wanted (zper_subscriptions_t *self, const char *topic,
                               zper_subscriptions_cache_t *cache);

//  How many prefixes the set holds (0: no subscriber wants anything).
size_t
    zper_subscriptions_size (zper_subscriptions_t *self);

//  Self test of this class
void
    zper_subscriptions_test (bool verbose);

#endif
