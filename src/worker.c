/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The launcher and the per-database workers.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

Size
txmq_worker_shmem_size(void)
{
	return 0;
}

void
txmq_worker_shmem_init(void)
{
}

void
txmq_register_launcher(void)
{
}

bool
txmq_worker_running(void)
{
	return false;
}
