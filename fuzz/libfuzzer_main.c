/* libFuzzer entry: compiled once per target with -DPQ_FUZZ_TARGET=pq_fuzz_<name>. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return PQ_FUZZ_TARGET(data, size);
}
