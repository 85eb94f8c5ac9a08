//  example.c - write three messages to a ZPER broker, then read the topic back.
//  Build: cc example.c $(pkg-config --cflags --libs zper) -o example
//  Run:   ./example [FRONT REAR]     (default tcp://127.0.0.1:5555 tcp://127.0.0.1:5556)
#include <zper.h>

int
main (int argc, char *argv [])
{
    const char *front = argc == 3? argv [1]: "tcp://127.0.0.1:5555";
    const char *rear = argc == 3? argv [2]: "tcp://127.0.0.1:5556";

    //  Write in mode 1: the broker acknowledges each message once it is durable.
    zper_producer_t *producer = zper_producer_new (front, "example", ZPER_MODE_ACK);
    assert (producer);
    for (int index = 0; index < 3; index++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstrf (msg, "id-%d", index);        //  first frame: the message id
        zmsg_addstrf (msg, "hello %d", index);
        zper_producer_send (producer, &msg);        //  errors also show in sync
    }
    int rc = zper_producer_sync (producer);         //  wait until all three are durable
    if (rc == -1)
        fprintf (stderr, "example: %s\n", zper_producer_error (producer));
    zper_producer_destroy (&producer);
    if (rc == -1)
        return 1;

    //  Read from the first retained message to the end of the topic.
    zper_consumer_t *consumer = zper_consumer_new (rear, "example");
    assert (consumer);
    zmsg_t *msg;
    while ((msg = zper_consumer_recv (consumer, 0))) {
        char *id = zmsg_popstr (msg);
        char *text = zmsg_popstr (msg);
        printf ("offset %" PRId64 ": %s %s\n", zper_consumer_offset (consumer), id, text);
        zstr_free (&id);
        zstr_free (&text);
        zmsg_destroy (&msg);
    }
    rc = errno == EAGAIN? 0: 1;                     //  EAGAIN: nothing more to read
    if (rc)
        fprintf (stderr, "example: %s\n", zper_consumer_error (consumer));
    zper_consumer_destroy (&consumer);
    return rc;
}
