#ifndef LODE_LUA_WORKFLOW_H
#define LODE_LUA_WORKFLOW_H
/* lode_lua_workflow.h - `lode.workflow`, `lode.step`, `lode.track`,
 * `lode.now`, `lode.uuid`, and the host context the CLI drives.
 *
 * The host context (one per lua_State) holds the executor and the workflow
 * whose body is running. It lives in a userdata anchored in the registry and
 * closes the executor when the state closes. */
#include "core/executor.h"
#include "lua/lode_host.h"
#include "lua/lode_lua.h"

/* The host context and running workflows: see lua/lode_host.h. */

#endif
