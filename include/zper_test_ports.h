/*  =========================================================================
    zper_test_ports - loopback ports for test servers, reserved across processes

    Every test that starts a server (zperd, etcd, a probe ROUTER) takes its
    ports here, or from tests/broker/zperd_harness.py's free_port, which
    honours the same reservations (the file's comment says how).
    ========================================================================= */

#ifndef ZPER_TEST_PORTS_H_INCLUDED
#define ZPER_TEST_PORTS_H_INCLUDED

#include <czmq.h>

#ifdef __cplusplus
extern "C" {
#endif

//  A port of 127.0.0.1 that nobody listened on a moment ago and that no
//  other test process (nor this one) has reserved; it stays reserved to
//  this process until it exits. Returns -1 if none is left.
int
    zper_test_ports_reserve (void);

//  Selftest
void
    zper_test_ports_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
