/*  =========================================================================
    zper_relay - push new visible messages to live readers

    Two endpoints (docs/protocol.md 5.2):
      relay.bind (ROUTER): a DEALER reader whose identity names a topic
        says hello (any message) or RESUME [offset:int64], then receives
        the topic's visible messages, each as its original frames, in order.
      relay.pub.bind (XPUB; a PUB to its SUB clients): every visible
        message of every subscribed topic as [topic][frames...], so a
        plain SUB socket can tail a topic.
    ========================================================================= */

#ifndef ZPER_RELAY_H_INCLUDED
#define ZPER_RELAY_H_INCLUDED

#include "zper_broker.h"

//  The relay actor. args is the zper_broker_t. Start it with
//  zper_broker_start (zper_relay_actor, broker, "relay").
void
    zper_relay_actor (zsock_t *pipe, void *args);

//  Self test of this class
void
    zper_relay_test (bool verbose);

#endif
