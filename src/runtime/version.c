/*
 * version.c - the version of the library a program actually runs with.
 *
 * A program compiled against one gorc_version.h may load another libgorc.so (within the
 * soname's ABI promise, see gorc_version.h): these report the library's, not the header's.
 */
#include "gorc.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

int gorc_version(void)
{
    return GORC_VERSION_NUMBER;
}

const char *gorc_version_string(void)
{
    return STR(GORC_VERSION_MAJOR) "." STR(GORC_VERSION_MINOR) "." STR(GORC_VERSION_PATCH);
}
