# Crash recovery: the server is killed while clients insert events, and the
# derived state must come back consistent with the events that survived.
#
# Phase 1 kills the whole instance at once (SIGKILL to the postmaster and
# every child, as a power loss would, minus the page cache) under a pgbench
# load and restarts it: WAL replay.  Phase 2 SIGKILLs one backend under load,
# so the postmaster reinitializes everything by itself (restart_after_crash).
#
# Each phase also commits events with known ids from this script, each one
# acknowledged before the next, some on items not in the catalog; all of them
# must survive with their items registered.  An event of a transaction left
# open at the crash must not.  After each crash rtrec_verify() must be empty
# (no event without its derived state, no state without its event) and a new
# load must run cleanly on top of the recovered state.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/lib";
use RtrecTAP;
use Time::HiRes qw(usleep);

# the whole-instance kill finds the postmaster's children in /proc
plan skip_all => 'needs Linux /proc' unless $^O eq 'linux' && -d '/proc/self';

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_statement = none
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION rtrec;
INSERT INTO rtrec.items (item_id, category_id)
	SELECT i, i % 20 FROM generate_series(1, 1000) i;
});

my %scripts = (
	'single' => q{
\set user random(1, 300)
\set item random_zipfian(1, 1000, 1.1)
\set t random(1, 6)
INSERT INTO rtrec.events (user_id, item_id, event_type)
	VALUES (:user, :item, (ARRAY['view', 'click', 'like', 'cart', 'purchase', 'impression'])[:t]);
},
	'multi' => q{
\set user random(1, 300)
\set i1 random_zipfian(1, 1000, 1.1)
\set i2 random(1, 1500)
INSERT INTO rtrec.events (user_id, item_id, event_type)
	SELECT :user, i, 'view' FROM generate_series(:i1, :i1 + 4) i
	UNION ALL SELECT :user, :i2, 'cart';
},
	'txn' => q{
\set user random(1, 300)
\set a random_zipfian(1, 1000, 1.1)
\set b random(1, 1500)
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :a, 'view');
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :b, 'purchase');
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :a, 'like');
COMMIT;
},);
my @script_opts;
for my $name (sort keys %scripts)
{
	my $file = $node->basedir . "/$name.sql";
	append_to_file($file, $scripts{$name});
	push @script_opts, '-f', $file;
}

# Starts pgbench in the background; returns its harness and output refs.
sub start_load
{
	my @opts = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME} = 'rtrec_load';
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', @opts, @script_opts,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

sub wait_for_events
{
	my ($n) = @_;
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) >= $n FROM rtrec.events"),
		"load inserted at least $n events");
}

# Commits events one transaction at a time from this script, each on hot
# item 1 and on a new item; returns the ids acknowledged.
my $next_ack = 1_000_000_000;
my @acked;

sub commit_acked_events
{
	my ($n) = @_;
	for (1 .. $n)
	{
		my $id = $next_ack;
		$next_ack += 2;
		my $new_item = 100_000 + $id % 100_000;
		$node->safe_psql('postgres', qq{
			BEGIN;
			INSERT INTO rtrec.events (event_id, user_id, item_id, event_type)
				VALUES ($id, 7, 1, 'click'), ($id + 1, 8, $new_item, 'cart');
			COMMIT;});
		push @acked, $id, $id + 1;
	}
}

# Children of a process, from /proc
sub child_pids
{
	my ($parent) = @_;
	my @children;
	opendir(my $dh, '/proc') or return ();
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat && $stat =~ /\)\s+\S+\s+(\d+)/;
		push @children, $pid if $1 == $parent;
	}
	closedir $dh;
	return @children;
}

# Checks the recovered state.
sub check_recovered
{
	my ($label, $open_event_id) = @_;

	check_derived_state($node, $label);
	is( $node->safe_psql(
			'postgres',
			'SELECT count(*) FROM rtrec.events WHERE event_id = ANY (ARRAY['
			  . join(',', @acked) . ']::bigint[])'),
		scalar(@acked),
		"$label: every acknowledged event survived");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM rtrec.events WHERE event_id = $open_event_id"),
		0,
		"$label: the event of the transaction open at the crash is gone");
}

# A short clean load on the recovered state: new backends reuse the writer
# slots of the dead ones, whose state rows are still there.
sub check_new_load
{
	my ($label) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-c', '4', '-t', '100', @script_opts,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	ok($ok, "$label: a new load runs cleanly") or diag("$out\n$err");
	check_derived_state($node, "$label, after the new load");
}

# Opens a transaction that inserts an event and never commits.
sub open_transaction
{
	my ($event_id) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_safe('BEGIN');
	$bg->query_safe(
		"INSERT INTO rtrec.events (event_id, user_id, item_id, event_type)"
		  . " VALUES ($event_id, 9, 2, 'purchase'), ($event_id + 1, 9, 300000, 'view')");
	return $bg;
}

###
### Phase 1: the whole instance dies at once
###
my ($load, $out, $err) = start_load('-c', '4', '-j', '2', '-T', '60', '-R', '50');
wait_for_events(150);
commit_acked_events(10);
my $open1 = open_transaction(2_000_000_000);
commit_acked_events(5);

my $pm = $node->{_pid};
kill 'STOP', $pm;                   # no new children from here on
my @children = child_pids($pm);
ok(@children >= 4, 'phase 1: the postmaster has children to kill');
kill 'KILL', $pm, @children;
$node->{_pid} = undef;              # what $node->kill9 does
$load->finish;                      # pgbench ends: its server is gone
unlike($$err, qr/deadlock|duplicate key/i, 'phase 1: no client failed before the crash');
eval { $open1->quit };

# wait until every killed process is gone, then restart
for my $i (1 .. 100)
{
	last unless grep { kill 0, $_ } ($pm, @children);
	usleep(100_000);
}
$node->start;
ok( $node->log_contains('database system was not properly shut down; automatic recovery in progress'),
	'phase 1: the restart ran crash recovery');
check_recovered('phase 1', 2_000_000_000);
check_new_load('phase 1');

###
### Phase 2: one backend dies, the postmaster reinitializes
###
my $log_offset = -s $node->logfile;
($load, $out, $err) = start_load('-c', '4', '-j', '2', '-T', '60', '-R', '50');
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM rtrec.events');
wait_for_events($before + 150);
commit_acked_events(10);
my $open2 = open_transaction(2_000_000_010);

my $victim = $node->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity
	 WHERE application_name = 'rtrec_load' AND pid <> pg_backend_pid()
	 ORDER BY pid LIMIT 1});
ok($victim =~ /^\d+$/, 'phase 2: found a pgbench backend')
  or BAIL_OUT("pgbench is not running:\n$$out\n$$err");
kill 'KILL', $victim;
$load->finish;
unlike($$err, qr/deadlock|duplicate key/i, 'phase 2: no client failed before the crash');
eval { $open2->quit };

# wait for the reinitialization to start before polling for connections,
# so that a connection made just before it does not count
my $log = '';
for my $i (1 .. 300)
{
	$log = slurp_file($node->logfile, $log_offset);
	last if $log =~ /all server processes terminated; reinitializing/;
	usleep(100_000);
}
like($log, qr/terminated by signal 9/, 'phase 2: the postmaster saw the backend die');
like($log, qr/all server processes terminated; reinitializing/,
	'phase 2: the postmaster reinitialized');
ok( $node->poll_query_until('postgres', 'SELECT 1', '1'),
	'phase 2: the server accepts connections again');
check_recovered('phase 2', 2_000_000_010);
check_new_load('phase 2');

$node->stop;
done_testing();
