# t/lib/RtrecTAP.pm: helpers shared by rtrec's TAP tests: queries in
# PostgreSQL::Test::BackgroundPsql sessions, and the checks of the derived
# state after a load.
package RtrecTAP;

use strict;
use warnings;

use Exporter 'import';
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(run_in q_ok wait_until check_derived_state $WORKER_RUNNING $WORKER_GONE);

# is rtrec's Swing refresh worker running (in any database)?
our $WORKER_RUNNING = q{
	SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'};
our $WORKER_GONE = q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'rtrec swing refresher'};

# Runs a query in a session; returns (output, stderr).
sub run_in
{
	my ($session, $sql) = @_;
	my $out = $session->query($sql);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return ($out, $err);
}

# Runs a query that must succeed; returns its output.
sub q_ok
{
	my ($session, $sql) = @_;
	my ($out, $err) = run_in($session, $sql);
	die "query failed: $err\n$sql" if $err ne '';
	return $out;
}

# Polls a session until the query returns 't'; returns the seconds it took,
# or undef after $timeout seconds.
sub wait_until
{
	my ($session, $sql, $timeout) = @_;
	my $start = time;
	while (time - $start < $timeout)
	{
		my ($out, $err) = run_in($session, $sql);
		return time - $start if $out eq 't';
		usleep(10_000);
	}
	return undef;
}

# Tests that the derived state in database postgres of $node matches the
# stored events: rtrec_verify() is empty, every item with an event is
# registered, and the counts of every feature view sum to the interactions.
sub check_derived_state
{
	my ($node, $label) = @_;
	my $sql = sub { $node->safe_psql('postgres', $_[0]) };

	is($sql->('SELECT count(*) FROM rtrec_verify()'), 0, "$label: rtrec_verify() finds no difference")
	  or diag($sql->('SELECT * FROM rtrec_verify() LIMIT 20'));
	is( $sql->(q{
		SELECT count(*) FROM (SELECT DISTINCT item_id FROM rtrec.events) e
		 WHERE NOT EXISTS (SELECT 1 FROM rtrec.items i WHERE i.item_id = e.item_id)}),
		0, "$label: every item with an event is registered");
	my $interactions = $sql->('SELECT count(*) FROM rtrec.interactions');
	ok($interactions > 0, "$label: some events are interactions");
	for my $view (qw(item_features user_features user_items))
	{
		is($sql->("SELECT sum(n_events) FROM rtrec.$view"), $interactions,
			"$label: $view.n_events sums to the interactions");
	}
	is( $sql->('SELECT sum(n_events) FROM rtrec.user_category'),
		$sql->('SELECT count(*) FROM rtrec.interactions WHERE category_id IS NOT NULL'),
		"$label: user_category.n_events sums to the categorized interactions");
	return;
}

1;
