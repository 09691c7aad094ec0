// The header compiles as C++ too (CInterfaceTests: -Wall -Wextra -Werror -pedantic).
#include <collectionsync.h>

int main() { return cs_abi_version() == CS_ABI_VERSION ? 0 : 1; }
