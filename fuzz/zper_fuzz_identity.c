/*  =========================================================================
    zper_fuzz_identity - fuzz target: the legacy identity parser

    Any bytes as a routing id (src/front/zper_identity.c). A parse either
    fails with a problem string or yields a topic that obeys the protocol's
    rules (docs/protocol.md 1.1): checked here, not just "did not crash".
    ========================================================================= */

#include "zper_fuzz.h"
#include "zper_identity.h"
#include <ctype.h>
#include <string.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    zper_identity_t identity;
    const char *problem = NULL;
    if (zper_identity_parse (data, size, &identity, &problem)) {
        assert (problem && *problem);
        return 0;
    }
    size_t topic_size = strlen (identity.topic);
    assert (topic_size >= 1 && topic_size <= ZPER_TOPIC_MAX);
    //  Letters and digits, or a cluster partition "name.digits" (protocol.md 1)
    const char *dot = strchr (identity.topic, '.');
    size_t name_size = dot? (size_t) (dot - identity.topic): topic_size;
    assert (name_size >= 1 && (!dot || (topic_size - name_size >= 2
                                        && topic_size - name_size <= 6)));
    for (size_t index = 0; index < topic_size; index++)
        assert (index == name_size? identity.topic [index] == '.'
                : index < name_size? isalnum ((unsigned char) identity.topic [index])
                : isdigit ((unsigned char) identity.topic [index]) != 0);
    assert (identity.mode <= 4);
    size_t header = identity.revision == ZPER_IDENTITY_LATER? 3: 2;
    assert (size == header + topic_size + (identity.has_uuid? 16: 0));
    assert (memcmp (data + header, identity.topic, topic_size) == 0);
    return 0;
}
