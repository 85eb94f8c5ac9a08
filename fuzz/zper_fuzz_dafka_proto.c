/*  =========================================================================
    zper_fuzz_dafka_proto - fuzz target: the Dafka codec

    Any multipart message (zper_fuzz_frames) decoded as a Dafka message
    (src/dafka/zper_dafka_proto.c). A decode either fails with a reason or
    gives a message whose header encodes again and decodes to the same
    header bytes.
    ========================================================================= */

#include "zper_fuzz.h"
#include "zper_dafka_proto.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zmsg_t *msg = zper_fuzz_frames (data, size);
    zper_dafka_msg_t *decoded = zper_dafka_msg_new ();
    if (zper_dafka_msg_decode (decoded, &msg) == 0) {
        assert (!msg);
        zframe_t *header = zper_dafka_msg_encode_header (decoded);
        if (header) {
            zmsg_t *again = zmsg_new ();
            zmsg_append (again, &header);
            zmsg_addmem (again, "", 0);
            zper_dafka_msg_t *copy = zper_dafka_msg_new ();
            zmsg_t *twice = zmsg_dup (again);
            if (zper_dafka_msg_decode (copy, &again) == 0) {
                zframe_t *first = zper_dafka_msg_encode_header (copy);
                assert (first && zframe_eq (first, zmsg_first (twice)));
                zframe_destroy (&first);
            }
            zmsg_destroy (&again);
            zmsg_destroy (&twice);
            zper_dafka_msg_destroy (&copy);
        }
    }
    zmsg_destroy (&msg);
    zper_dafka_msg_destroy (&decoded);
    return 0;
}
