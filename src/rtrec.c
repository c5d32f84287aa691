/*-------------------------------------------------------------------------
 *
 * rtrec.c
 *	  Module entry point of rtrec: real-time recommendations in PostgreSQL.
 *
 * rtrec needs no shared_preload_libraries: the library is loaded by the
 * first call of one of its functions or triggers in a backend.  Everything
 * shared between backends lives in ordinary, WAL-logged tables of schema
 * rtrec; each backend keeps only caches that it can rebuild at any time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "fmgr.h"
#include "utils/lsyscache.h"

#include "rtrec.h"

PG_MODULE_MAGIC;

extern void RtrecSettingsInit(void);

void		_PG_init(void);

void
_PG_init(void)
{
	RtrecSettingsInit();
}

/*
 * rtrec 1.2 dropped rtrec.user_category_state (user_item_state's rows carry
 * the category since).  Asked per statement, not cached: ALTER EXTENSION
 * rtrec UPDATE may run between two statements of a backend.
 */
bool
RtrecStateBefore12(void)
{
	return OidIsValid(get_relname_relid("user_category_state",
										get_namespace_oid(RTREC_SCHEMA, false)));
}
