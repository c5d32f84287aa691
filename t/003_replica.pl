# Hot standby: every read function and analyst view works on a streaming
# replica (nothing they do writes), and gives the primary's answers.
#
#  1. The primary loads a small catalog (two categories) and the events of
#     20 users, refreshes Swing; the standby, caught up, answers
#     rtrec_recommend, rtrec_similar, rtrec_candidates, rtrec_trending and
#     the analyst views exactly as the primary does, and runs no refresh
#     worker of its own.
#  2. One user takes up a new interest on the primary; the time until the
#     standby's rtrec_recommend answer changes is measured (printed with
#     note, asserted under 30 s).
#  3. While the primary's refresher is held off (a lock on
#     rtrec.swing_neighbors), events change the Swing lists of an item: on
#     the standby that item's queue rows are visible, and rtrec_similar
#     computes its exact list on read instead of returning the stale stored
#     one.  Once the primary drains the queue, the stored list replicates
#     and equals what the standby computed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use RtrecTAP;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
log_statement = none
max_connections = 20
track_commit_timestamp = on
});
$primary->start;

# Items 1..10 are in category 10, 11..20 in category 20.  Users 1..10 act in
# category 10, users 11..20 in category 20; within a category, user u views
# four consecutive items starting at its own offset and buys one of them,
# so that neighbouring items share users (non-trivial Swing scores).
$primary->safe_psql('postgres', q{
CREATE EXTENSION rtrec;
INSERT INTO rtrec.items (item_id, category_id, price, brand)
	SELECT i, CASE WHEN i <= 10 THEN 10 ELSE 20 END, i * 1.5, 'brand' || (i % 3)
	  FROM generate_series(1, 20) i;
INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, base + (u + k) % 10 + 1, CASE WHEN k = 3 THEN 'purchase' ELSE 'view' END,
		   timestamptz '2024-03-01 00:00:00+00' + make_interval(mins => u * 10 + k)
	  FROM generate_series(1, 20) u,
		   LATERAL (SELECT CASE WHEN u <= 10 THEN 0 ELSE 10 END AS base) b,
		   generate_series(0, 3) k;
SELECT rtrec_swing_refresh();
-- a volatile probe for the lag measurement: each statement of a PL/pgSQL
-- loop takes a new snapshot, so on the standby it sees WAL as it is replayed
CREATE SCHEMA probe;
CREATE FUNCTION probe.wait_for_change(p_user bigint, p_baseline text, p_timeout float8)
RETURNS float8 LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	deadline timestamptz := clock_timestamp() + make_interval(secs => p_timeout);
	cur text;
BEGIN
	LOOP
		SELECT string_agg(r.item_id || ':' || r.reason, ',' ORDER BY r.score DESC, r.item_id)
		  INTO cur FROM rtrec_recommend(p_user, 10) r;
		IF cur IS DISTINCT FROM p_baseline THEN
			RETURN extract(epoch FROM clock_timestamp());
		END IF;
		IF clock_timestamp() > deadline THEN
			RETURN NULL;
		END IF;
		PERFORM pg_sleep(0.002);
	END LOOP;
END
$$;
});

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->append_conf('postgresql.conf', qq{
log_statement = none
max_connections = 20
});
$standby->start;

# One session per node for the reads: a new connection costs more than most
# of the queries below.
my $ps = $primary->background_psql('postgres');
my $ss = $standby->background_psql('postgres', on_error_stop => 0);

# Waits until the primary's refresher has drained the Swing queue, then for
# the standby to replay everything.
sub settle
{
	q_ok($ps, 'SELECT rtrec_swing_refresh()');
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
}

# Every read the test compares, as one text per query.
my %reads = (
	recommend => q{
		SELECT u, string_agg(format('%s:%s:%s', r.item_id, r.score, r.reason), ',' ORDER BY r.score DESC, r.item_id)
		  FROM generate_series(1, 22) u, LATERAL rtrec_recommend(u, 10) r GROUP BY u ORDER BY u},
	recommend_filtered => q{
		SELECT u, string_agg(format('%s:%s:%s', r.item_id, r.score, r.reason), ',' ORDER BY r.score DESC, r.item_id)
		  FROM generate_series(1, 20, 3) u, LATERAL rtrec_recommend(u, 5, 20, false) r GROUP BY u ORDER BY u},
	similar => q{
		SELECT i, string_agg(format('%s:%s', s.item_id, s.score), ',' ORDER BY s.score DESC, s.item_id)
		  FROM generate_series(1, 21) i, LATERAL rtrec_similar(i, 10) s GROUP BY i ORDER BY i},
	candidates => q{
		SELECT u, string_agg(format('%s:%s:%s', c.item_id, c.source, c.score), ',' ORDER BY c.item_id)
		  FROM generate_series(1, 20, 4) u, LATERAL rtrec_candidates(u, 50) c GROUP BY u ORDER BY u},
	trending => q{
		SELECT coalesce(c::text, 'all'), string_agg(format('%s:%s', t.item_id, t.score), ',' ORDER BY t.score DESC, t.item_id)
		  FROM (VALUES (NULL::bigint), (10), (20), (30)) v(c), LATERAL rtrec_trending(c, 10) t
		 GROUP BY c ORDER BY c NULLS FIRST},
	user_features => q{SELECT * FROM rtrec.user_features ORDER BY user_id},
	item_features => q{SELECT * FROM rtrec.item_features ORDER BY item_id},
	user_category => q{SELECT * FROM rtrec.user_category ORDER BY user_id, category_id},
	verify => q{SELECT count(*) FROM rtrec_verify()},
);

settle();
is(q_ok($ss, 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

for my $name (sort keys %reads)
{
	my ($out, $err) = run_in($ss, $reads{$name});
	is($err, '', "standby: $name runs without error");
	unlike($err, qr/read-only|cannot execute|recovery/i, "standby: $name raises no read-only error");
	my $want = q_ok($ps, $reads{$name});
	isnt($want, '', "primary: $name returns rows");
	is($out, $want, "standby: $name equals the primary's answer");
}
is(q_ok($ss, 'SELECT count(*) FROM rtrec_verify()'),
	'0', 'standby: rtrec_verify() finds nothing');

# The standby never starts a refresher (the read functions above ran there).
is( q_ok($ss,
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'}),
	'0',
	'standby: no rtrec swing refresher runs');

#
# 2. Replication lag of a new interest, as the application sees it
#
my $baseline = q_ok($ss, q{
	SELECT string_agg(r.item_id || ':' || r.reason, ',' ORDER BY r.score DESC, r.item_id)
	  FROM rtrec_recommend(1, 10) r});
like($baseline, qr/^\d+:/, 'standby: user 1 has recommendations before the new interest');
unlike($baseline, qr/c2i:20/, 'user 1 has no category-20 candidates yet');

my ($probe_out, $probe_err) = ('', '');
my $probe = IPC::Run::start(
	[
		'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d',
		$standby->connstr('postgres'),
		'-c', "SELECT probe.wait_for_change(1, '$baseline', 30)"
	],
	'>', \$probe_out, '2>', \$probe_err);
# let the probe connect and take its first look before the commit
my $probe_started = 0;
for (1 .. 300)
{
	$probe_started = q_ok($ss, q{
		SELECT count(*) FROM pg_stat_activity
		 WHERE query LIKE '%probe.wait_for_change%' AND pid <> pg_backend_pid()});
	last if $probe_started;
	usleep(50_000);
}
ok($probe_started, 'the standby probe is running') or BAIL_OUT('the probe did not start');
usleep(100_000);

# the primary records commit times (track_commit_timestamp), so the lag is
# measured from the commit itself, on the same clock as the probe's
my $t_sent = time;
q_ok($ps, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts) VALUES
		(1, 15, 'purchase', '2024-03-02 00:00:00+00'),
		(1, 16, 'purchase', '2024-03-02 00:01:00+00'),
		(1, 17, 'cart', '2024-03-02 00:02:00+00')});
my $t_commit = q_ok($ps, q{
	SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM rtrec.events
	 WHERE user_id = 1 AND item_id = 17});
my $primary_after = q_ok($ps, q{
	SELECT string_agg(r.item_id || ':' || r.reason, ',' ORDER BY r.score DESC, r.item_id)
	  FROM rtrec_recommend(1, 10) r});
isnt($primary_after, $baseline, 'primary: the new interest changes user 1\'s answer at once');

ok($probe->finish, 'the standby probe ran') or diag($probe_err);
chomp $probe_out;
ok($probe_out =~ /^[\d.]+$/, 'standby: user 1\'s answer changed within 30 s')
  or diag("probe returned '$probe_out' $probe_err");
if ($probe_out =~ /^[\d.]+$/ && $t_commit =~ /^[\d.]+$/)
{
	note sprintf(
		'replication lag: the standby\'s rtrec_recommend answer changed %.1f ms after the commit on the primary (%.1f ms after the INSERT was sent)',
		1000 * ($probe_out - $t_commit), 1000 * ($probe_out - $t_sent));
	cmp_ok($probe_out - $t_commit, '<', 30, 'lag under 30 s');
}

settle();
for my $name (qw(recommend candidates user_features user_category similar))
{
	is(q_ok($ss, $reads{$name}), q_ok($ps, $reads{$name}),
		"after the new interest: standby $name equals the primary's");
}
like(q_ok($ss, q{SELECT string_agg(reason, ',') FROM rtrec_recommend(1, 10)}),
	qr/(swing|cf):1[567]|c2i:20/, 'standby: user 1 now gets candidates from the new interest');

#
# 3. rtrec_similar on the standby for an item with pending queue entries
#
# Hold the primary's refresher off: it takes SHARE ROW EXCLUSIVE on
# rtrec.swing_neighbors before draining, so the queue stays as it is.
my $locker = $primary->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE rtrec.swing_neighbors IN SHARE ROW EXCLUSIVE MODE');

my $stored_sql = q{
	SELECT string_agg(format('%s:%s', neighbor_id, score), ',' ORDER BY rank)
	  FROM rtrec.swing_neighbors WHERE item_id = 12};
my $similar_sql = q{
	SELECT string_agg(format('%s:%s', item_id, score), ',' ORDER BY score DESC, item_id)
	  FROM rtrec_similar(12, 20)};
my $computed_sql = q{
	SELECT string_agg(format('%s:%s', neighbor_id, score), ',' ORDER BY score DESC, neighbor_id)
	  FROM rtrec.swing_compute(12, 20)};
my $stored_before = q_ok($ss, $stored_sql);
unlike($stored_before, qr/(^|,)[2-4]:/, 'item 12 has no neighbour among items 2..4 yet');

# users 2..4 (category 10) also buy item 12: its user set and Swing list change
q_ok($ps, q{
	INSERT INTO rtrec.events (user_id, item_id, event_type, ts)
	SELECT u, 12, 'purchase', timestamptz '2024-03-03 00:00:00+00' + make_interval(mins => u)
	  FROM generate_series(2, 4) u});
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

ok( q_ok($ss, 'SELECT count(*) FROM rtrec.swing_queue WHERE item_id = 12') > 0,
	'standby: item 12 has queue rows waiting (the primary\'s refresher is held off)');
is(q_ok($ss, $stored_sql), $stored_before,
	'standby: the stored list of item 12 is still the old one');
my $similar_standby = q_ok($ss, $similar_sql);
isnt($similar_standby, $stored_before, 'standby: rtrec_similar(12) does not return the stale stored list');
is($similar_standby, q_ok($ss, $computed_sql),
	'standby: rtrec_similar(12) is the exact list computed on read');
like($similar_standby, qr/(^|,)[2-4]:/, 'standby: rtrec_similar(12) reflects the new events');
is($similar_standby, q_ok($ps, $similar_sql),
	'standby: rtrec_similar(12) equals the primary\'s answer');
is(q_ok($ss, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'}),
	'0', 'standby: still no refresher');

# release the refresher; the stored list catches up and replicates
$locker->query_safe('COMMIT');
$locker->quit;
my $drained = 0;
for (1 .. 300)
{
	$drained = q_ok($ps, 'SELECT count(*) = 0 FROM rtrec.swing_queue') eq 't';
	last if $drained;
	usleep(50_000);
}
ok($drained, 'primary: the refresher drained the queue by itself');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is(q_ok($ss, 'SELECT count(*) FROM rtrec.swing_queue'), '0',
	'standby: the queue is empty once the primary drained it');
is(q_ok($ss, $stored_sql . ' AND rank <= 20'), $similar_standby,
	'standby: the stored list now equals what was computed on read');
is(q_ok($ss, 'SELECT count(*) FROM rtrec_verify()'), '0',
	'standby: rtrec_verify() finds nothing at the end');

$ss->quit;
$ps->quit;
$standby->stop;
$primary->stop;
done_testing();
