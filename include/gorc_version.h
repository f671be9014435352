/*
 * gorc_version.h - the one place gorc's version is written.
 *
 * The Makefile reads these three numbers for the shared library's soname and file name, for
 * gorc.pc and for the CMake package; gorc_version() and gorc_version_string() report the
 * version of the library actually linked, which may differ from the header a program was
 * compiled with.
 *
 * ABI rule. Before 1.0, every minor release may change the API and the ABI: the soname is
 * libgorc.so.0.MINOR, so a program built against 0.2 never loads 0.3 by accident, and patch
 * releases (0.2.x) keep the ABI. From 1.0 on, the soname is libgorc.so.MAJOR and only a major
 * release may break the ABI; minor releases only add. Every change to a public name or
 * struct is listed in CHANGELOG.md.
 */
#ifndef GORC_VERSION_H
#define GORC_VERSION_H

#define GORC_VERSION_MAJOR 0
#define GORC_VERSION_MINOR 2
#define GORC_VERSION_PATCH 0

/* One number that grows with every release, for #if checks: 0x000200 for 0.2.0. */
#define GORC_VERSION_NUMBER                                                                        \
    ((GORC_VERSION_MAJOR << 16) | (GORC_VERSION_MINOR << 8) | GORC_VERSION_PATCH)

#endif /* GORC_VERSION_H */
