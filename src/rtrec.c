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

#include "fmgr.h"

#include "rtrec.h"

PG_MODULE_MAGIC;

extern void RtrecSettingsInit(void);

void		_PG_init(void);

void
_PG_init(void)
{
	RtrecSettingsInit();
}
