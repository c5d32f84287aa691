/* rtrec--1.0--1.1.sql: update script from rtrec 1.0 to 1.1 */

\echo Use "ALTER EXTENSION rtrec UPDATE TO '1.1'" to load this file. \quit

/*
 * CREATE EXTENSION rtrec runs rtrec--1.0.sql and then this script (there is
 * no rtrec--1.1.sql), so a fresh 1.1 and an updated 1.0 are the same by
 * construction; t/006_upgrade.pl checks it on a database with data.
 *
 * Rules for what goes here (1.0 is released and its script is frozen):
 *   - schema-qualify everything and pin search_path in new functions, as
 *     rtrec--1.0.sql does; refer to the function schema as @extschema@;
 *   - keep the data: ALTER, never DROP and re-CREATE, tables that hold it;
 *     call pg_extension_config_dump() for new tables that users write;
 *   - REVOKE from PUBLIC new functions that are the owner's only;
 *   - lock rtrec.events first, as every rtrec path does, before any other
 *     rtrec table (the refresh worker gives way to the update's locks);
 *   - the C library serves 1.0 and 1.1 objects alike (it is installed
 *     before databases are updated): keep the symbols 1.0 refers to.
 */

-- 1.1: the refresh worker gives way to DDL (C only, no catalog change).

-- 1.1: rtrec_train() fits the ranker to the database's own events.
CREATE FUNCTION @extschema@.rtrec_train(test_events integer DEFAULT 1000, apply boolean DEFAULT true)
RETURNS TABLE(measure text, current double precision, trained double precision)
AS 'MODULE_PATHNAME', 'rtrec_train'
LANGUAGE C VOLATILE CALLED ON NULL INPUT
SET search_path = pg_catalog, pg_temp
SET jit = off;
COMMENT ON FUNCTION @extschema@.rtrec_train(integer, boolean) IS
	'fits rtrec.model_weights and trigger_decay by replaying the newest test_events first interactions (rolled back); reports hit rate and MRR@20 on the newest third, held out; blocks new events while it runs';
-- settings and weights belong to the owner
REVOKE ALL ON FUNCTION @extschema@.rtrec_train(integer, boolean) FROM PUBLIC;

-- 1.1: rtrec_verify() locks rtrec.events before any state table, as INSERT,
-- TRUNCATE and the refresh worker do.  The 1.0 SQL function planned its
-- query with the state tables first and rtrec.events last, so a TRUNCATE of
-- rtrec.events (events, then the state tables in its trigger) could
-- deadlock with it.  The 1.0 query lives on as rtrec.verify_state(); a
-- REVOKE on the 1.0 rtrec_verify() must be done again on the new one.
ALTER FUNCTION @extschema@.rtrec_verify() RENAME TO verify_state;
ALTER FUNCTION @extschema@.verify_state() SET SCHEMA rtrec;
REVOKE ALL ON FUNCTION rtrec.verify_state() FROM PUBLIC;
COMMENT ON FUNCTION rtrec.verify_state() IS
	'the comparison behind rtrec_verify(), which locks rtrec.events first';
CREATE FUNCTION @extschema@.rtrec_verify()
RETURNS TABLE (relation text, key text, stored text, expected text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	LOCK TABLE rtrec.events IN ACCESS SHARE MODE;
	RETURN QUERY SELECT * FROM rtrec.verify_state();
END
$$;
COMMENT ON FUNCTION @extschema@.rtrec_verify() IS
	'every difference between the stored derived state and a recomputation from rtrec.events; no rows = consistent';

-- 1.1: three more ranker features, off (weight 0) until an owner or
-- rtrec_train() weighs them.  The validation trigger admits only known
-- features, so it steps aside for their rows.
ALTER TABLE rtrec.model_weights DISABLE TRIGGER model_weights_validate;
INSERT INTO rtrec.model_weights (feature, weight, description) VALUES
	('conversion', 0.0, 'the item''s event weight per interaction (carts and purchases weigh more than views), relative to the best candidate (0..1)'),
	('price_fit', 0.0, 'exp(-|ln price - the user''s mean ln price|) over priced items, the mean weighted by the user''s event weights; 0 without prices'),
	('brand', 0.0, 'the share of the user''s event weight on branded items that went to the item''s brand; 0 without brands');
ALTER TABLE rtrec.model_weights ENABLE TRIGGER model_weights_validate;
