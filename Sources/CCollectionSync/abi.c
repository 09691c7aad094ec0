/* The header as a C module for the Swift implementation (CollectionSyncC), and the ABI
 * assumptions that implementation makes, checked by the C compiler. */
#include "collectionsync.h"

/* The Swift functions return a 32-bit int where the header says cs_status. */
_Static_assert(sizeof(cs_status) == sizeof(int) && sizeof(int) == 4, "cs_status is a 32-bit int");
