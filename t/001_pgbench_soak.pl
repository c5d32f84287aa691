# pgbench soak: concurrent clients insert events on a zipfian (hot) item set
# with random users, as single-row INSERTs, multi-row INSERTs, multi-statement
# transactions that touch items in random order, and transactions that roll
# back.  Asserts that no client errs (no deadlock, no serialization failure),
# that every committed event and no rolled-back one is stored, and that the
# derived state equals its recomputation from rtrec.events.
#
# Phase 1 runs 4 clients with the simple protocol; phase 2 runs 8 clients
# with prepared statements while another session runs rtrec_rebuild()
# repeatedly.  Each phase has a fixed number of transactions per client, so
# the amount of work is deterministic.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::Bin/lib";
use RtrecTAP;

my $node = PostgreSQL::Test::Cluster->new('soak');
$node->init;
$node->append_conf('postgresql.conf', qq{
log_statement = none
max_connections = 40
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION rtrec;
-- items 1..1000 are catalogued in 20 categories; higher ids are not, so
-- the first event on one registers it
INSERT INTO rtrec.items (item_id, category_id)
	SELECT i, i % 20 FROM generate_series(1, 1000) i;
-- each transaction also logs how many events it stores, in the same
-- transaction: the exact count of committed events, whatever pgbench reports
CREATE TABLE public.soak_log (n integer NOT NULL);
});

# Scripts, each one transaction.  Event types cycle through every weight,
# impressions (weight 0) included.  Per committed transaction, a script
# stores: single 1 event, multi 3, txn 4, abort 0.
my %scripts = (
	'single' => q{
\set user random(1, 300)
\set item random_zipfian(1, 1000, 1.1)
\set t random(1, 6)
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type)
	VALUES (:user, :item, (ARRAY['view', 'click', 'like', 'cart', 'purchase', 'impression'])[:t]);
INSERT INTO public.soak_log VALUES (1);
COMMIT;
},
	'multi' => q{
\set user random(1, 300)
\set user2 random(1, 300)
\set i1 random_zipfian(1, 1000, 1.1)
\set i2 random_zipfian(1, 1000, 1.1)
\set i3 random(1, 1500)
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type)
	VALUES (:user, :i1, 'click'), (:user2, :i2, 'view'), (:user, :i3, 'cart');
INSERT INTO public.soak_log VALUES (3);
COMMIT;
},
	'txn' => q{
\set user random(1, 300)
\set a random_zipfian(1, 1000, 1.1)
\set b random_zipfian(1, 1000, 1.1)
\set c random(1, 1500)
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :a, 'view');
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :b, 'like');
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :c, 'purchase');
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :a, 'impression');
INSERT INTO public.soak_log VALUES (4);
COMMIT;
},
	'abort' => q{
\set user random(1, 300)
\set a random_zipfian(1, 1000, 1.1)
\set c random(1, 1500)
BEGIN;
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :a, 'purchase');
INSERT INTO rtrec.events (user_id, item_id, event_type) VALUES (:user, :c, 'view'), (:user, :a, 'cart');
INSERT INTO public.soak_log VALUES (3);
ROLLBACK;
},);
my @names = sort keys %scripts;    # pgbench numbers scripts in -f order

my @script_opts;
for my $name (@names)
{
	my $file = $node->basedir . "/$name.sql";
	append_to_file($file, $scripts{$name});
	push @script_opts, '-f', "$file\@" . ($name eq 'abort' ? 1 : 3);
}

# Runs pgbench; returns a hash of name => number of transactions processed.
sub run_pgbench
{
	my ($label, @opts) = @_;
	my ($out, $err) = ('', '');
	my @cmd = (
		'pgbench', '-n', '-r', @opts, @script_opts,
		'-h', $node->host, '-p', $node->port, 'postgres');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	ok($ok, "$label: pgbench exits 0") or diag("stdout:\n$out\nstderr:\n$err");
	unlike($err, qr/(ERROR|FATAL|deadlock|aborted)/i, "$label: pgbench reports no error");
	like($out, qr/number of failed transactions: 0 /, "$label: no failed transaction");
	like($out, qr{number of transactions actually processed: (\d+)/\1\n},
		"$label: every transaction processed");

	my %done;
	while ($out =~ /SQL script \d+: \S+\/(\w+)\.sql\n - weight: \d+ \([^)]*\)\n - (\d+) transactions/g)
	{
		$done{$1} = $2;
	}
	is(scalar(keys %done), scalar(@names), "$label: pgbench reported each script")
	  or diag($out);
	return %done;
}

# Checks the stored events and the derived state against the committed work.
sub check_state
{
	my ($label, $expected_events) = @_;

	is($node->safe_psql('postgres', 'SELECT count(*) FROM rtrec.events'),
		$expected_events, "$label: events stored = events committed");
	check_derived_state($node, $label);
}

# Phase 1: 4 clients, simple protocol
my %done = run_pgbench('phase 1', '-c', '4', '-j', '4', '-t', '400');
my $committed_sql = 'SELECT coalesce(sum(n), 0) FROM public.soak_log';
my $expected = $node->safe_psql('postgres', $committed_sql);
ok($done{abort} > 0 && $done{txn} > 0, 'phase 1: every kind of transaction ran');
ok($expected >= 400 * 4, 'phase 1: the committed transactions logged their events');
check_state('phase 1', $expected);

# The hot items of the zipfian set were written by every client at once.
ok( $node->safe_psql(
		'postgres', 'SELECT max(n_events) FROM rtrec.item_features') > 100,
	'phase 1: a hot item took many events');

# Phase 2: 8 clients, prepared statements, rebuilds running meanwhile
my ($rb_in, $rb_out, $rb_err) = ('', '', '');
my $rb = IPC::Run::start(
	[
		'psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		'-h', $node->host, '-p', $node->port, '-d', 'postgres'
	],
	'<', \$rb_in, '>', \$rb_out, '2>', \$rb_err);
$rb_in .= "SELECT rtrec_rebuild(), pg_sleep(0.5);\n" x 4;
$rb_in .= "\\q\n";

%done = run_pgbench('phase 2', '-c', '8', '-j', '4', '-t', '300', '-M', 'prepared');
ok($rb->finish, 'phase 2: rtrec_rebuild() succeeded while clients inserted')
  or diag($rb_err);
is(() = $rb_out =~ /^\|$/mg, 4, 'phase 2: all 4 rebuilds ran');
is($rb_err, '', 'phase 2: rtrec_rebuild() printed no error');
$expected = $node->safe_psql('postgres', $committed_sql);
check_state('phase 2', $expected);

# A final rebuild gives the same state as the triggers did.
my $before = $node->safe_psql('postgres', q{
	SELECT string_agg(format('%s:%s:%s', item_id, n_events, n_users), ',' ORDER BY item_id)
	  FROM rtrec.item_features});
$node->safe_psql('postgres', 'SELECT rtrec_rebuild()');
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(format('%s:%s:%s', item_id, n_events, n_users), ',' ORDER BY item_id)
	  FROM rtrec.item_features}),
	$before,
	'rebuild leaves item counts unchanged');
is($node->safe_psql('postgres', 'SELECT count(*) FROM rtrec_verify()'),
	0, 'rtrec_verify() is clean after the final rebuild');

$node->stop;
done_testing();
