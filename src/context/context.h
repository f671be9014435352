/*
 * context.h - what the context layer's files share.
 */
#ifndef GORC_CONTEXT_INTERNAL_H
#define GORC_CONTEXT_INTERNAL_H

#include "gorc_context.h"
#include "runtime/cancel.h"

/* The source a blocking call waits on for ctx, or NULL if ctx can never be cancelled. */
gorc__cancel *gorc__ctx_source(gorc_ctx *c);

#endif
