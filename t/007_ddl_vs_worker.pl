# DDL against the Swing refresh worker: the user's statement never loses.
#
# The worker drains rtrec.swing_queue in transactions that lock rtrec.events,
# the queue, the neighbour tables, the catalog and the settings.  A DBA's
# DROP EXTENSION rtrec or TRUNCATE rtrec.events must wait for such a
# transaction or make it give way, never fail with "deadlock detected".
#
#  1. A DBA's transaction locks rtrec.events (to archive it, say), then
#     truncates it, while a freshly started worker wants events: the
#     TRUNCATE succeeds.  The same with DROP EXTENSION rtrec.
#  2. TRUNCATE rtrec.events, repeatedly, each time while the worker is in the
#     middle of a refresh (it holds its lock on rtrec.swing_neighbors), after
#     a random delay: no TRUNCATE fails; afterwards new events are refreshed
#     and rtrec_verify() is empty.
#  3. DROP EXTENSION rtrec, the same way (CREATE EXTENSION again between
#     rounds): no DROP fails, and the worker exits for good each time.
#
# RTREC_DDL_LOOPS sets the rounds of parts 2 and 3 (default 10).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use RtrecTAP;
use Time::HiRes qw(time usleep);

my $loops = $ENV{RTREC_DDL_LOOPS} // 10;

my $node = PostgreSQL::Test::Cluster->new('ddl');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_statement = none
log_lock_waits = on
deadlock_timeout = 1s
});
$node->start;

my $admin = $node->background_psql('postgres', on_error_stop => 0);
my $poll = $node->background_psql('postgres', on_error_stop => 0);

q_ok($admin, 'SET client_min_messages = warning');

my $worker_running = $WORKER_RUNNING;
my $worker_gone = $WORKER_GONE;
# the worker is inside a refresh transaction: it holds its neighbours lock
my $worker_refreshing = q{
	SELECT count(*) > 0 FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	 WHERE a.backend_type = 'rtrec swing refresher' AND l.granted
	   AND l.relation = to_regclass('rtrec.swing_neighbors')};

# Dense events (every list has a few dozen users), so that one refresh
# transaction of the worker takes a noticeable time; $round shifts users.
sub load_events
{
	my ($round) = @_;
	my $base = $round * 1000;
	q_ok($admin, qq{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT $base + u, (u * 7 + k * 13) % 150 + 1, 'view',
		   timestamptz '2024-05-01 00:00:00+00' + make_interval(secs => u * 50 + k)
	  FROM generate_series(1, 400) u, generate_series(0, 14) k});
}

# Counts a failed DDL statement; returns 1 if it failed.
my %deadlocks;
sub failed
{
	my ($what, $round, $err) = @_;
	return 0 if $err eq '';
	note "$what, round $round: $err";
	$deadlocks{$what}++ if $err =~ /deadlock detected/;
	return 1;
}

#
# 1. A transaction that locks rtrec.events, then truncates it or drops the
#    extension, while a fresh worker (a restart after pg_terminate_backend)
#    wants events
#
sub ddl_in_locking_transaction
{
	my ($ddl, $round) = @_;
	load_events($round);
	defined wait_until($poll, $worker_running, 5) or note 'the worker did not start';
	q_ok($admin, q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE backend_type = 'rtrec swing refresher'});
	defined wait_until($poll, $worker_gone, 5) or note 'the worker did not exit';
	my $dba = $node->background_psql('postgres', on_error_stop => 0);
	q_ok($dba, 'BEGIN; LOCK TABLE rtrec.events IN ACCESS EXCLUSIVE MODE');
	# the postmaster restarts the worker after 1 s; let it wait for events
	# past its own deadlock check
	defined wait_until($poll, $worker_running, 5) or note 'the worker did not restart';
	usleep(1_500_000);
	my (undef, $err) = run_in($dba, $ddl);
	run_in($dba, 'COMMIT');
	$dba->quit;
	return $err;
}

q_ok($admin, 'CREATE EXTENSION rtrec');
my $err = ddl_in_locking_transaction('TRUNCATE rtrec.events', 1);
ok(!failed('TRUNCATE in a locking transaction', 1, $err),
	'TRUNCATE rtrec.events in a transaction that locked it first, a fresh worker waiting');
$err = ddl_in_locking_transaction('DROP EXTENSION rtrec', 2);
ok(!failed('DROP EXTENSION in a locking transaction', 2, $err),
	'DROP EXTENSION rtrec in a transaction that locked rtrec.events first, a fresh worker waiting');
ok(defined wait_until($poll, $worker_gone, 5), 'the worker exits after the DROP');

#
# Issues $ddl while the worker is mid-refresh, after a random delay;
# returns the DDL's stderr ('' on success).
#
sub ddl_mid_refresh
{
	my ($ddl, $round) = @_;
	load_events($round);
	defined wait_until($poll, $worker_refreshing, 10)
	  or note "round $round: the worker was not seen refreshing";
	usleep(int(rand(400_000)));
	my (undef, $err) = run_in($admin, $ddl);
	return $err;
}

#
# 2. TRUNCATE rtrec.events mid-refresh
#
q_ok($admin, 'CREATE EXTENSION IF NOT EXISTS rtrec');
my $failed = 0;
for my $round (1 .. $loops)
{
	$failed += failed('TRUNCATE mid-refresh', $round,
		ddl_mid_refresh('TRUNCATE rtrec.events', $round));
}
note "TRUNCATE mid-refresh: $failed of $loops rounds failed";
is($failed, 0, "TRUNCATE rtrec.events mid-refresh never fails ($loops rounds)");

# the worker still serves the database
load_events($loops + 1);
ok(defined wait_until($poll, 'SELECT count(*) = 0 FROM rtrec.swing_queue', 60),
	'after the TRUNCATEs, the worker drains new events');
is(q_ok($admin, 'SELECT count(*) FROM rtrec_verify()'), '0', 'rtrec_verify() is empty');

#
# 3. DROP EXTENSION rtrec mid-refresh
#
$failed = 0;
my $not_gone = 0;
for my $round (1 .. $loops)
{
	q_ok($admin, 'CREATE EXTENSION IF NOT EXISTS rtrec');
	if (failed('DROP EXTENSION mid-refresh', $round,
		ddl_mid_refresh('DROP EXTENSION rtrec', $round)))
	{
		$failed++;
		next;
	}
	$not_gone++ unless defined wait_until($poll, $worker_gone, 5);
}
note "DROP EXTENSION mid-refresh: $failed of $loops rounds failed";
is($failed, 0, "DROP EXTENSION rtrec mid-refresh never fails ($loops rounds)");
is($not_gone, 0, 'after each DROP EXTENSION the worker exits within 5 s');
q_ok($admin, 'DROP EXTENSION IF EXISTS rtrec');
usleep(1_500_000);
is(q_ok($poll, $worker_gone), 't', 'and does not come back');

is_deeply(\%deadlocks, {}, 'no DDL statement lost a deadlock');
my $log = slurp_file($node->logfile);
my $in_log = () = $log =~ /ERROR:  deadlock detected/g;
note "server log: $in_log \"deadlock detected\" errors (the DDL's and the worker's)";

$admin->quit;
$poll->quit;
$node->stop;
done_testing();
