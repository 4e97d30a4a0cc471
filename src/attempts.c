/*-------------------------------------------------------------------------
 *
 * attempts.c
 *	  The messages receivers are taking right now (claims), and the
 *	  delivery attempts that no row carries, kept where a crash of any
 *	  server process leaves them.
 *
 * Claims.  receive deletes the rows it delivers, and until that delete
 * commits other consumers still see the rows.  A receiver claims each row
 * here before deleting it and skips rows claimed by others, so concurrent
 * consumers do not try deletes that must fail.  The delete itself (which
 * never waits, see xact.c) decides which consumer gets a message.  A claim
 * lasts until its transaction ends; claims live in shared memory and die
 * with it.
 *
 * Attempts.  A consumer that receives and acks in one transaction writes
 * nothing else, so if it aborts, or the server crashes under it, the
 * database keeps no trace of the attempt.  So each message a transaction
 * changes (receives, or settles after an earlier lease) has a record here:
 *
 *	- aborted: attempts of transactions that ended without commit, which
 *	  no row carries;
 *	- xid, pending: the transaction that took the aborted attempts over
 *	  (the attempt number of its receive, the row of its lease or nack
 *	  carries them) and what goes back to aborted if it does not commit:
 *	  what it took, plus one if it gave the message to its consumer
 *	  (delivering);
 *	- crashed: how many of the attempts were cut short by a crash, for
 *	  the last_error of the message (held.c).
 *
 * A receive takes the count over and marks the record in one step, before
 * the consumer sees the message; the pre-commit callback, once its leases
 * are written, flags the marks committing; commit clears them (the row or
 * the message's end carries the attempts), abort gives pending back
 * (xact.c).  So aborted plus the pending of a mark is exactly what no
 * committed row carries.
 *
 * Surviving crashes.  The records are an array in a file of the data
 * directory, PG_DYNSHMEM_DIR "/txmq.attempts", mapped MAP_SHARED: every
 * store goes to the kernel's page cache at once, and that outlives any
 * process; nothing is written or synced per receive.  A killed backend
 * (SIGKILL, a segfault, the OOM killer) makes the postmaster kill the
 * others, reinitialise shared memory and call txmq_attempts_startup
 * again; a killed postmaster is followed by a new one, which calls it
 * after every old process has left.  Either way no process that could
 * still change a record runs, and no transaction that marked one can
 * still commit.  Startup counts each mark of a transaction that had not
 * reached its commit as a crashed attempt: pending goes to aborted, and
 * one to crashed if it was delivering.  A mark flagged committing is in
 * doubt until crash recovery has replayed the commit record or not: the
 * first process that needs the record after it (the message's next
 * receive, or the worker's sweep) asks the commit log.  Where the crash
 * comes in a receive:
 *
 *	(a) before receive returns: if it had marked the record, the attempt
 *		counts although the consumer never saw the message (erring toward
 *		a poison message that crashes receive itself, e.g. in detoasting);
 *		if not, nothing was delivered and nothing counts;
 *	(b) after it returned, while the consumer works, or in its pre-commit
 *		work (deferred triggers, writing the leases): the mark is not yet
 *		committing, the attempt counts;
 *	(c) during commit, after the pre-commit callback: the commit log
 *		decides.  A commit record that reached the kernel is replayed, and
 *		the lease row (or the ack) carries the attempt; one that did not
 *		means the transaction did not commit, and the attempt counts.  One
 *		case is left to chance: if none of the transaction's WAL reached
 *		the kernel, recovery does not know its xid and gives the number
 *		out again; a transaction that takes it and commits before the
 *		record is decided makes the attempt go uncounted.  That needs a
 *		crash in the microseconds between the callback and the commit
 *		record's write;
 *	(d) after commit: the mark was cleared, or the commit log says
 *		committed.  (With synchronous_commit = off a commit whose record
 *		a crash lost is lost, and the attempt with it.)
 *
 * A backend that outlives a killed postmaster aborts its transaction when
 * it notices, and the abort counts its attempt as crashed.  A clean
 * shutdown ends every transaction first, so nothing is in progress then.
 *
 * Every state change of a record is one aligned 64-bit store (State), so
 * a process killed at any instruction leaves the old state or the new one;
 * a record is filled in before it is marked used.  The hash table that
 * finds records (and holds the claims) is in shared memory and is rebuilt
 * from the file at every startup.
 *
 * A clean shutdown (the postmaster's exit with status 0) syncs the file and
 * marks it clean, so any restart keeps the counts.  A crash of the
 * operating system (a power cut) loses what the page cache held: the file
 * is kept after a process crash only if the kernel that wrote it still
 * runs (the boot id of /proc/sys/kernel/random/boot_id), else discarded
 * with a LOG, and after an OS crash the poison messages of the moment get
 * max_deliveries further attempts (a power cut is not a poison loop).  The
 * file is tied to the device and inode it was created as: a copy (a base
 * backup, an rsync, a restore) is discarded on the server it was copied
 * to; pg_basebackup does not copy PG_DYNSHMEM_DIR at all.  A header names
 * the layout and txmq.max_tracked_messages; after a change the counts
 * start again.  If the file cannot be made, records live in anonymous
 * shared memory (a WARNING says so): they survive the crash of a backend,
 * which the postmaster outlives, not the postmaster's.
 *
 * Room.  The table holds txmq.max_tracked_messages messages.  When it is
 * full a receive cannot claim a row and skips it, as a row claimed by
 * another consumer: nothing is delivered that is not counted, and waiting
 * receives look again every txmq.poll_interval.  A WARNING (once per
 * backend) and txmq.stats (tracked_messages, tracking_skips) say so.
 * Records are freed when their message is done with: at commit, or by the
 * database's worker, which drops records of messages that no longer exist
 * (purged, dropped subscriptions) and of databases that are gone
 * (txmq_attempts_sweep).
 *
 * Without shared_preload_libraries none of this exists: claims succeed,
 * and nothing is counted.
 *
 *-------------------------------------------------------------------------
 */
#include "txmq.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/dsm_impl.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/pmsignal.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/syscache.h"

/* children inherit the mapping: the postmaster must fork them */
#ifdef EXEC_BACKEND
#error "txmq's attempt table needs a postmaster that forks its children"
#endif

#define ATTEMPTS_FILE PG_DYNSHMEM_DIR "/txmq.attempts"
#define ATTEMPTS_MAGIC 0x74786d61	/* "txma" */
#define ATTEMPTS_VERSION 1
#define HEADER_BYTES 4096		/* one page: synced alone */
#define BOOT_ID_LEN 40
#define MAX_COUNT 1023			/* a count's 10 bits; max_deliveries <= 1000 */
#define MAX_CRASHED 511			/* only named in last_error */
#define SWEEP_BATCH 1000		/* records the sweep checks per round */

typedef struct FileHeader
{
	uint32		magic;
	uint32		version;
	uint32		nrecords;		/* txmq.max_tracked_messages */
	uint32		clean;			/* synced at a clean shutdown */
	uint64		dev;			/* the file's own: a copy has others */
	uint64		ino;
	char		boot_id[BOOT_ID_LEN];	/* the kernel that last wrote it */
} FileHeader;

typedef struct Record
{
	Oid			dboid;
	int32		sub_id;
	int64		msg_id;
	uint64		state;			/* a packed State, stored at once */
	uint32		used;			/* set last when filled in, cleared first */
} Record;

/*
 * A record's state, packed into one 64-bit word: xid in bits 0..31,
 * aborted 32..41, pending 42..51, crashed 52..60, delivering 61,
 * committing 62, in_doubt 63.  All zero: the record remembers nothing.
 */
typedef struct State
{
	TransactionId xid;			/* the mark: who took the attempts over */
	uint32		aborted;
	uint32		pending;
	uint32		crashed;
	bool		delivering;
	bool		committing;		/* xid's pre-commit callback has run */
	bool		in_doubt;		/* it was committing before the restart */
} State;

typedef struct MsgKey
{
	Oid			dboid;
	int32		sub_id;
	int64		msg_id;
} MsgKey;

/* An entry of the shared hash table: a claim and the message's record */
typedef struct MsgState
{
	MsgKey		key;
	int			claimer;		/* pid of the claiming backend, or 0 */
	int32		rec;			/* index of its record */
} MsgState;

typedef struct AttemptsShared
{
	LWLock	   *lock;			/* the hash table, free list and records */
	pg_atomic_uint32 nused;		/* entries in use; lets settles skip the lock */
	pg_atomic_uint64 skips;		/* rows receives skipped for want of room */
	int32		nfree;
	int32		free_recs[FLEXIBLE_ARRAY_MEMBER];
} AttemptsShared;

static AttemptsShared *shared = NULL;
static HTAB *msgs = NULL;
static FileHeader *header = NULL;	/* the mapping; NULL: none */
static Record *records = NULL;
static bool file_backed = false;

static Size
mapping_size(void)
{
	return HEADER_BYTES + sizeof(Record) * (Size) txmq_max_tracked_messages;
}

void
txmq_attempts_request(void)
{
	RequestAddinShmemSpace(add_size(offsetof(AttemptsShared, free_recs),
									mul_size(sizeof(int32),
											 txmq_max_tracked_messages)));
	RequestAddinShmemSpace(hash_estimate_size(txmq_max_tracked_messages,
											  sizeof(MsgState)));
	RequestNamedLWLockTranche("txmq attempts", 1);
}

static State
unpack(uint64 w)
{
	State		s;

	s.xid = (TransactionId) (w & 0xFFFFFFFF);
	s.aborted = (w >> 32) & MAX_COUNT;
	s.pending = (w >> 42) & MAX_COUNT;
	s.crashed = (w >> 52) & MAX_CRASHED;
	s.delivering = (w >> 61) & 1;
	s.committing = (w >> 62) & 1;
	s.in_doubt = (w >> 63) & 1;
	return s;
}

static uint64
pack(const State *s)
{
	return (uint64) s->xid |
		(uint64) Min(s->aborted, MAX_COUNT) << 32 |
		(uint64) Min(s->pending, MAX_COUNT) << 42 |
		(uint64) Min(s->crashed, MAX_CRASHED) << 52 |
		(uint64) s->delivering << 61 |
		(uint64) s->committing << 62 |
		(uint64) s->in_doubt << 63;
}

/* The boot id of the running kernel, "" where there is none. */
static void
read_boot_id(char *out)
{
	FILE	   *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	memset(out, 0, BOOT_ID_LEN);
	if (f == NULL)
		return;
	if (fgets(out, BOOT_ID_LEN, f) == NULL)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/*
 * Why the file's records cannot be trusted here, or NULL if they can (see
 * the file header).
 */
static const char *
distrust(const FileHeader *h, const struct stat *st, const char *boot_id)
{
	if (h->magic != ATTEMPTS_MAGIC || h->version != ATTEMPTS_VERSION)
		return "it was not written by this version of txmq";
	if (h->nrecords != (uint32) txmq_max_tracked_messages)
		return "txmq.max_tracked_messages changed";
	if (h->dev != (uint64) st->st_dev || h->ino != (uint64) st->st_ino)
		return "it is a copy of another server's file (a base backup or restore)";
	if (!h->clean && strncmp(h->boot_id, boot_id, BOOT_ID_LEN) != 0)
		return "the operating system restarted after the server stopped without a clean shutdown";
	return NULL;
}

/*
 * Open and map the file, starting it anew if its records cannot be
 * trusted; NULL (with a WARNING) if that fails.
 */
static FileHeader *
map_file(void)
{
	char		boot_id[BOOT_ID_LEN];
	struct stat st;
	FileHeader *h;
	const char *why;
	int			fd;

	fd = OpenTransientFile(ATTEMPTS_FILE, O_RDWR | O_CREAT | PG_BINARY);
	if (fd < 0 || fstat(fd, &st) != 0)
		goto fail;
	read_boot_id(boot_id);
	h = st.st_size == (off_t) mapping_size() ?
		mmap(NULL, mapping_size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) :
		MAP_FAILED;
	why = h != MAP_FAILED ? distrust(h, &st, boot_id) : st.st_size == 0 ? NULL :
		"txmq.max_tracked_messages changed, or another version of txmq wrote it";
	if (h == MAP_FAILED || why != NULL)
	{
		if (why)
			ereport(LOG,
					(errmsg("txmq: the delivery attempts counted in \"%s\" are discarded: %s",
							ATTEMPTS_FILE, why)));
		if (h != MAP_FAILED)
			munmap(h, mapping_size());
		/* zeroed, and allocated now: a later store must not fail */
		if (ftruncate(fd, 0) != 0 ||
			(errno = posix_fallocate(fd, 0, mapping_size())) != 0)
			goto fail;
		h = mmap(NULL, mapping_size(), PROT_READ | PROT_WRITE, MAP_SHARED,
				 fd, 0);
		if (h == MAP_FAILED)
			goto fail;
		h->magic = ATTEMPTS_MAGIC;
		h->version = ATTEMPTS_VERSION;
		h->nrecords = txmq_max_tracked_messages;
		h->dev = st.st_dev;
		h->ino = st.st_ino;
	}
	CloseTransientFile(fd);
	memcpy(h->boot_id, boot_id, BOOT_ID_LEN);
	h->clean = 0;
	/* on disk before any record changes, so a power cut is seen as one */
	if (msync(h, HEADER_BYTES, MS_SYNC) != 0)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("txmq: could not sync \"%s\": %m", ATTEMPTS_FILE)));
	return h;

fail:
	ereport(WARNING,
			(errcode_for_file_access(),
			 errmsg("txmq: could not map \"%s\": %m", ATTEMPTS_FILE),
			 errdetail("Delivery attempts are counted in shared memory and do not survive a crash of the postmaster.")));
	if (fd >= 0)
		CloseTransientFile(fd);
	return NULL;
}

/* At the postmaster's clean exit: the file is complete on disk. */
static void
mark_clean(int code, Datum arg)
{
	if (code != 0 || IsUnderPostmaster || !file_backed)
		return;
	if (msync(header, mapping_size(), MS_SYNC) != 0)
		return;
	header->clean = 1;
	(void) msync(header, HEADER_BYTES, MS_SYNC);
}

/* The transaction that marked s ended without commit: count it. */
static void
not_committed(State *s)
{
	s->aborted += s->pending;
	s->crashed += s->delivering;
	s->xid = InvalidTransactionId;
	s->pending = 0;
	s->delivering = s->committing = s->in_doubt = false;
}

/*
 * Rebuild the hash table from the records: no process that could change
 * one runs now, and none of the transactions that marked them commits.
 * Those that had not reached their commit did not commit; those that had
 * are in doubt until the commit log can be asked (see the file header).
 */
static void
rebuild(void)
{
	shared->nfree = 0;
	for (int32 i = txmq_max_tracked_messages - 1; i >= 0; i--)
	{
		Record	   *r = &records[i];
		State		s = unpack(r->state);
		MsgState   *m;
		MsgKey		key;

		if (TransactionIdIsValid(s.xid) && !s.committing)
			not_committed(&s);
		s.in_doubt = s.committing;
		r->state = pack(&s);
		if (r->used && r->state != 0)
		{
			memset(&key, 0, sizeof(key));
			key.dboid = r->dboid;
			key.sub_id = r->sub_id;
			key.msg_id = r->msg_id;
			m = hash_search(msgs, &key, HASH_ENTER, NULL);
			m->claimer = 0;
			m->rec = i;
			pg_atomic_fetch_add_u32(&shared->nused, 1);
			continue;
		}
		r->used = 0;
		shared->free_recs[shared->nfree++] = i;
	}
}

void
txmq_attempts_startup(void)
{
	bool		found;
	HASHCTL		info;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("txmq attempts",
							 add_size(offsetof(AttemptsShared, free_recs),
									  mul_size(sizeof(int32),
											   txmq_max_tracked_messages)),
							 &found);
	info.keysize = sizeof(MsgKey);
	info.entrysize = sizeof(MsgState);
	msgs = ShmemInitHash("txmq messages", txmq_max_tracked_messages,
						 txmq_max_tracked_messages, &info,
						 HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
	if (header == NULL)
	{
		header = map_file();
		file_backed = header != NULL;
		if (!file_backed)
			header = mmap(NULL, mapping_size(), PROT_READ | PROT_WRITE,
						  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (header == MAP_FAILED)
			ereport(FATAL,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("txmq: could not map memory for delivery attempts: %m")));
		records = (Record *) ((char *) header + HEADER_BYTES);
	}
	if (!found)
	{
		shared->lock = &GetNamedLWLockTranche("txmq attempts")->lock;
		pg_atomic_init_u32(&shared->nused, 0);
		pg_atomic_init_u64(&shared->skips, 0);
		if (!IsUnderPostmaster)
		{
			rebuild();
			on_shmem_exit(mark_clean, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static MsgKey
msg_key(int32 sub_id, int64 msg_id)
{
	MsgKey		key;

	memset(&key, 0, sizeof(key));
	key.dboid = MyDatabaseId;
	key.sub_id = sub_id;
	key.msg_id = msg_id;
	return key;
}

static void
warn_full(void)
{
	static bool warned = false;

	pg_atomic_fetch_add_u64(&shared->skips, 1);
	if (warned)
		return;
	warned = true;
	ereport(WARNING,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("txmq: all %d tracked-message entries are in use",
					txmq_max_tracked_messages),
			 errdetail("Receives skip the messages they cannot track until entries are freed (txmq.stats, tracking_skips)."),
			 errhint("Raise txmq.max_tracked_messages and restart.")));
}

/* A new entry and its record, for key; NULL without room.  Lock held. */
static MsgState *
enter(const MsgKey *key, bool *found)
{
	MsgState   *m = hash_search(msgs, key, HASH_ENTER_NULL, found);
	Record	   *r;

	if (m == NULL || *found)
		return m;
	if (shared->nfree == 0)
	{
		/* a record per entry: cannot happen while the sizes agree */
		hash_search(msgs, key, HASH_REMOVE, NULL);
		return NULL;
	}
	m->claimer = 0;
	m->rec = shared->free_recs[--shared->nfree];
	r = &records[m->rec];
	r->dboid = key->dboid;
	r->sub_id = key->sub_id;
	r->msg_id = key->msg_id;
	r->state = 0;
	pg_write_barrier();
	r->used = 1;
	pg_atomic_fetch_add_u32(&shared->nused, 1);
	return m;
}

/* Drop an entry that no longer remembers anything; lock held. */
static void
drop_if_empty(MsgState *m)
{
	Record	   *r = &records[m->rec];

	if (m->claimer != 0 || r->state != 0)
		return;
	r->used = 0;
	shared->free_recs[shared->nfree++] = m->rec;
	hash_search(msgs, &m->key, HASH_REMOVE, NULL);
	pg_atomic_fetch_sub_u32(&shared->nused, 1);
}

/*
 * Whether xid, which was committing when the server last stopped,
 * committed.  One whose records recovery never saw (they were still in
 * the WAL buffers) did not, and its number may be given out again: see
 * the file header.
 */
static bool
committed_before(TransactionId xid)
{
	/* a record no one looked at since its commit log was truncated */
	if (TransactionIdPrecedes(xid, txmq_oldest_clog_xid()))
		return true;
	if (!TransactionIdPrecedes(xid, ReadNextTransactionId()))
		return false;
	return TransactionIdDidCommit(xid);
}

/* A record's state, its mark decided if it was in doubt; lock held. */
static State
current(Record *r)
{
	State		s = unpack(r->state);

	if (!s.in_doubt)
		return s;
	if (committed_before(s.xid))
	{
		/* its rows carry the attempts */
		s.pending = s.crashed = 0;
		s.delivering = false;
	}
	not_committed(&s);
	r->state = pack(&s);
	return s;
}

/*
 * Claim a message for this backend's transaction; false if another
 * backend holds it, or there is no room to track it (the caller skips it
 * either way).  Without shared memory claims are not recorded and
 * succeed: the receiver's delete still decides, and nothing is counted.
 */
bool
txmq_claim(int32 sub_id, int64 msg_id)
{
	MsgKey		key;
	MsgState   *m;
	bool		found;
	bool		ok = true;

	if (msgs == NULL)
		return true;
	key = msg_key(sub_id, msg_id);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	m = enter(&key, &found);
	if (m != NULL)
	{
		if (m->claimer != 0 && m->claimer != MyProcPid)
			ok = false;
		else
			m->claimer = MyProcPid;
	}
	LWLockRelease(shared->lock);
	if (m == NULL)
		warn_full();
	return m != NULL && ok;
}

/* Whether another backend holds a claim on a message (a look, no claim). */
bool
txmq_claimed_elsewhere(int32 sub_id, int64 msg_id)
{
	MsgKey		key;
	MsgState   *m;
	bool		held = false;

	if (msgs == NULL)
		return false;
	key = msg_key(sub_id, msg_id);
	LWLockAcquire(shared->lock, LW_SHARED);
	m = hash_search(msgs, &key, HASH_FIND, NULL);
	if (m != NULL)
		held = m->claimer != 0 && m->claimer != MyProcPid;
	LWLockRelease(shared->lock);
	return held;
}

/* Whether the table is full, so that receives skip what they cannot track */
bool
txmq_attempts_full(void)
{
	return msgs != NULL &&
		pg_atomic_read_u32(&shared->nused) >= (uint32) txmq_max_tracked_messages;
}

typedef enum Release
{
	CLAIM_ONLY,					/* a row the receive could not take */
	COMMITTED,					/* what it took over, its rows carry */
	ABORTED						/* n attempts go back to aborted */
} Release;

/*
 * Release this backend's claim on a message and, unless only the claim
 * goes, end what its transaction did to the record: aborted, n attempts
 * go back, and if delivered, the consumer no longer has the message.
 * Called from commit and abort paths: must not throw.
 */
static void
release(int32 sub_id, int64 msg_id, Release how, int32 n, bool delivered)
{
	MsgKey		key;
	MsgState   *m;

	if (msgs == NULL)
		return;
	key = msg_key(sub_id, msg_id);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	m = hash_search(msgs, &key, HASH_FIND, NULL);
	if (m != NULL)
	{
		Record	   *r = &records[m->rec];
		State		s = unpack(r->state);

		if (m->claimer == MyProcPid)
			m->claimer = 0;
		if (how != CLAIM_ONLY && TransactionIdIsValid(s.xid) &&
			!s.in_doubt && s.xid == GetTopTransactionIdIfAny())
		{
			if (how == COMMITTED)
			{
				s.pending = s.crashed = 0;
				s.delivering = false;
			}
			else
			{
				s.aborted += n;
				s.pending -= Min(s.pending, (uint32) n);
				s.delivering = s.delivering && !delivered;
				/* the backend ends because the postmaster died */
				if (delivered && !PostmasterIsAlive())
					s.crashed++;
			}
			if (s.pending == 0 && !s.delivering)
			{
				s.xid = InvalidTransactionId;
				s.committing = false;
			}
			r->state = pack(&s);
		}
		drop_if_empty(m);
	}
	LWLockRelease(shared->lock);
}

/* Release a claim on a row the receive could not take. */
void
txmq_unclaim(int32 sub_id, int64 msg_id)
{
	release(sub_id, msg_id, CLAIM_ONLY, 0, false);
}

/* This transaction commits: its rows carry the attempts it took over. */
void
txmq_attempts_committed(int32 sub_id, int64 msg_id)
{
	release(sub_id, msg_id, COMMITTED, 0, false);
}

/*
 * What this transaction (or a savepoint of it) did to a message was
 * undone: n attempts it took or made go back, and if delivered, the
 * consumer it gave the message to no longer has it.
 */
void
txmq_attempts_aborted(int32 sub_id, int64 msg_id, int32 n, bool delivered)
{
	release(sub_id, msg_id, ABORTED, n, delivered);
}

/*
 * This transaction's pre-commit work is done, the commit record comes
 * next: from here on a crash leaves the marks of these messages to the
 * commit log (see the file header).
 */
void
txmq_attempts_committing(const int32 *sub_ids, const int64 *msg_ids, int n)
{
	TransactionId xid = GetTopTransactionIdIfAny();

	if (msgs == NULL || n == 0)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		MsgKey		key = msg_key(sub_ids[i], msg_ids[i]);
		MsgState   *m = hash_search(msgs, &key, HASH_FIND, NULL);
		State		s;

		if (m == NULL)
			continue;
		s = unpack(records[m->rec].state);
		if (s.xid != xid || !TransactionIdIsValid(xid))
			continue;
		s.committing = true;
		records[m->rec].state = pack(&s);
	}
	LWLockRelease(shared->lock);
}

/* The aborted attempts of a message that no row carries yet. */
int32
txmq_aborted_attempts(int32 sub_id, int64 msg_id)
{
	MsgKey		key;
	MsgState   *m;
	int32		n = 0;

	if (msgs == NULL || pg_atomic_read_u32(&shared->nused) == 0)
		return 0;
	key = msg_key(sub_id, msg_id);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	m = hash_search(msgs, &key, HASH_FIND, NULL);
	if (m != NULL)
		n = current(&records[m->rec]).aborted;
	LWLockRelease(shared->lock);
	return n;
}

/*
 * Take over the aborted attempts of a message whose row this backend's
 * transaction is changing (it holds the claim or the row lock): the row
 * it writes will carry them, or they go with the message.  If fewer than
 * room were aborted, the transaction also makes an attempt of its own and
 * gives the message to its consumer: that counts too if it does not
 * commit, even if the server crashes first.  Returns the attempts taken;
 * *crashed (if not NULL) says how many of them a crash cut short.
 */
int32
txmq_take_aborted(int32 sub_id, int64 msg_id, int32 room, int32 *crashed)
{
	MsgKey		key;
	MsgState   *m;
	State		s = {0};

	if (crashed)
		*crashed = 0;
	if (msgs == NULL || (room == 0 && pg_atomic_read_u32(&shared->nused) == 0))
		return 0;
	key = msg_key(sub_id, msg_id);
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	/* a receive's claim made the entry; a settle has none to take */
	m = hash_search(msgs, &key, HASH_FIND, NULL);
	if (m != NULL)
	{
		Record	   *r = &records[m->rec];
		uint32		taken;

		s = current(r);
		taken = s.aborted;
		if (crashed)
			*crashed = s.crashed;
		s.xid = GetTopTransactionId();
		s.pending += taken;
		s.aborted = 0;
		if (taken < (uint32) room)
		{
			s.pending++;
			s.delivering = true;
		}
		r->state = pack(&s);
		s.aborted = taken;
	}
	LWLockRelease(shared->lock);
	return s.aborted;
}

/* Forget the record of key unless it was claimed or marked meanwhile. */
static void
forget_idle(const MsgKey *key)
{
	MsgState   *m = hash_search(msgs, key, HASH_FIND, NULL);

	if (m == NULL || m->claimer != 0 ||
		TransactionIdIsValid(unpack(records[m->rec].state).xid))
		return;
	records[m->rec].state = 0;
	drop_if_empty(m);
}

/*
 * Up to max records that no claim or mark holds, into keys: of this
 * database (mine) or of other ones.  Decides the marks left in doubt by a
 * restart on the way.
 */
static int
idle_records(MsgKey *keys, int max, bool mine)
{
	HASH_SEQ_STATUS seq;
	MsgState   *m;
	int			n = 0;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, msgs);
	while ((m = hash_seq_search(&seq)) != NULL)
	{
		State		s = current(&records[m->rec]);

		if (m->claimer != 0 || TransactionIdIsValid(s.xid) ||
			(m->key.dboid == MyDatabaseId) != mine)
			continue;
		if (n < max && (n == 0 || mine || keys[n - 1].dboid != m->key.dboid))
			keys[n++] = m->key;
	}
	LWLockRelease(shared->lock);
	return n;
}

/*
 * For the database's worker, in a transaction: decide the marks left in
 * doubt by a restart, and forget the records of messages that are gone
 * without a receive (purged, their subscription or topic dropped) and of
 * databases that no longer exist.
 */
void
txmq_attempts_sweep(void)
{
	MsgKey	   *keys;
	Datum	   *subs;
	Datum	   *ids;
	Datum		args[2];
	TxmqOwnerScope scope;
	int			n;

	if (msgs == NULL || pg_atomic_read_u32(&shared->nused) == 0)
		return;
	keys = palloc(sizeof(MsgKey) * SWEEP_BATCH);
	n = idle_records(keys, SWEEP_BATCH, false);
	for (int i = 0; i < n; i++)
		if (!SearchSysCacheExists1(DATABASEOID,
								   ObjectIdGetDatum(keys[i].dboid)))
			txmq_attempts_forget_database(keys[i].dboid);

	n = idle_records(keys, SWEEP_BATCH, true);
	if (n == 0)
		return;
	subs = palloc(sizeof(Datum) * n);
	ids = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		subs[i] = Int32GetDatum(keys[i].sub_id);
		ids[i] = Int64GetDatum(keys[i].msg_id);
	}
	args[0] = PointerGetDatum(construct_array(subs, n, INT4OID, 4, true,
											  TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(ids, n, INT8OID, 8,
											  FLOAT8PASSBYVAL,
											  TYPALIGN_DOUBLE));
	txmq_scope_enter(&scope, false);
	n = txmq_exec(PLAN_ATTEMPTS_GONE, args, NULL, 0);

	/*
	 * Its snapshot was taken after the records were read idle: a message
	 * it does not find was deleted without a receive (which marks the
	 * record) and does not come back.
	 */
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		MsgKey		key = msg_key(DatumGetInt32(txmq_col(i, 1, &isnull)),
								  DatumGetInt64(txmq_col(i, 2, &isnull)));

		forget_idle(&key);
	}
	LWLockRelease(shared->lock);
	txmq_scope_leave(&scope);
}

/*
 * Forget the idle records of a database that is gone, or has no txmq any
 * more (its worker's exit).
 */
void
txmq_attempts_forget_database(Oid dboid)
{
	HASH_SEQ_STATUS seq;
	MsgState   *m;

	if (msgs == NULL)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, msgs);
	while ((m = hash_seq_search(&seq)) != NULL)
		if (m->key.dboid == dboid)
			forget_idle(&m->key);
	LWLockRelease(shared->lock);
}

/* Entries in use and rows skipped for want of room; false if no table. */
bool
txmq_attempts_usage(int64 *used, int64 *skips)
{
	if (msgs == NULL)
		return false;
	*used = pg_atomic_read_u32(&shared->nused);
	*skips = (int64) pg_atomic_read_u64(&shared->skips);
	return true;
}
