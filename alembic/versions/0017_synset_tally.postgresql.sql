-- Migration 0017 (alembic/versions/0017_synset_tally.py), PostgreSQL: the functions and
-- triggers that keep synset_tally_delta and annotator_tally_delta. Groups of statements
-- are separated by lines of dashes; the capitalised calls (CLEAN, VOTER_SUMS, ...) are
-- the migration's macros.
-- Advisory locks: 726001 takedown matching, (726002, candidate id) an item's votes.
CREATE FUNCTION tally_rewithhold(ids integer[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(ids) = 0 THEN RETURN; END IF;
    PERFORM 1 FROM image WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE image SET withheld = NOT withheld WHERE id = ANY(ids) AND withheld <> WITHHELD(image);
END $$;
CREATE FUNCTION tally_takedown_images(text, text) RETURNS integer[] LANGUAGE sql STABLE AS $$
    SELECT ARRAY(SELECT id FROM image WHERE $1 = 'sha256' AND sha256 = $2
                 UNION SELECT image_id FROM candidate WHERE $1 = 'url' AND url = $2
                 UNION SELECT image_id FROM candidate WHERE $1 = 'creator' AND creator = $2)
$$;
-- Locks the items' votes until commit (a vote, a gold answer or a new decision on one of
-- them waits, or is waited for), and their decisions (an update of one waits, or is waited
-- for). Past 1,000 items in one transaction (the lock table is shared and small): a vote
-- writer (an import) locks the vote table instead, so other voters wait for it; a decision
-- writer (synset consensus) goes on without, so voters never wait for a recompute.
CREATE FUNCTION tally_lock_items(ids integer[], voting boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    held integer := cardinality(ids)
        + coalesce(nullif(current_setting('tally.item_locks', true), ''), '0')::integer;
BEGIN
    IF held <= 1000 THEN
        PERFORM pg_advisory_xact_lock(726002, x), set_config('tally.item_locks', held::text, true)
        FROM unnest(ids) x ORDER BY x;
    ELSIF voting THEN
        LOCK TABLE vote IN SHARE ROW EXCLUSIVE MODE;
    END IF;
    PERFORM 1 FROM consensus WHERE candidate_id = ANY(ids) FOR SHARE;
END $$;
-- The synset ledger for items whose vote count changed by dn (dyes of them yes).
CREATE FUNCTION tally_votes(changed integer[], dn bigint[], dyes bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_lock_items(changed);
    INSERT INTO synset_tally_delta (synset_id, votes, agreed_items, agreement_sum)
    SELECT c.synset_id, sum(a.dn), sum(ITEMS(t.n) - ITEMS(b.n)),
           sum(SHARE(t.yes, t.n) - SHARE(b.yes, b.n))
    FROM unnest(changed, dn, dyes) a (candidate_id, dn, dyes)
    JOIN candidate c ON c.id = a.candidate_id
    CROSS JOIN LATERAL (SELECT count(*) AS n, count(*) FILTER (WHERE v.answer) AS yes
                        FROM vote v WHERE v.candidate_id = a.candidate_id) t
    CROSS JOIN LATERAL (SELECT t.n - a.dn AS n, t.yes - a.dyes AS yes) b
    GROUP BY c.synset_id;
END $$;
----
CREATE FUNCTION tally_image_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(726001);
    PERFORM tally_rewithhold(ARRAY(SELECT n.id FROM new_rows n JOIN takedown t
        ON t.value = n.sha256 WHERE t.kind = 'sha256' AND t.revoked_at IS NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER tally_image_insert AFTER INSERT ON image REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_image_insert();
----
CREATE FUNCTION tally_image_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
                   WHERE (o.quality, o.keep, o.reference_match, o.withheld)
                         IS DISTINCT FROM (n.quality, n.keep, n.reference_match, n.withheld))
    THEN RETURN NULL; END IF;
    INSERT INTO synset_tally_delta (synset_id, clean, rejected)
    SELECT c.synset_id, sum(CLEAN(c, n) - CLEAN(c, o)), sum(REJECTED(c, n) - REJECTED(c, o))
    FROM old_rows o JOIN new_rows n ON n.id = o.id JOIN candidate c ON c.image_id = n.id
    WHERE (o.quality, o.keep, o.reference_match, o.withheld)
          IS DISTINCT FROM (n.quality, n.keep, n.reference_match, n.withheld)
    GROUP BY c.synset_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_image_update AFTER UPDATE ON image
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_image_update();
----
CREATE FUNCTION tally_candidate_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(726001);
    PERFORM 1 FROM image WHERE id IN (SELECT image_id FROM new_rows) ORDER BY id FOR SHARE;
    INSERT INTO synset_tally_delta (synset_id, candidates, clean, rejected)
    SELECT n.synset_id, count(*), sum(CLEAN(n, i)), sum(REJECTED(n, i))
    FROM new_rows n JOIN image i ON i.id = n.image_id GROUP BY n.synset_id;
    -- After the counts: the image trigger then moves the new rows with the rest.
    PERFORM tally_rewithhold(ARRAY(
        SELECT n.image_id FROM new_rows n JOIN takedown t ON t.value = n.url
        WHERE t.kind = 'url' AND t.revoked_at IS NULL
        UNION SELECT n.image_id FROM new_rows n JOIN takedown t ON t.value = n.creator
        WHERE t.kind = 'creator' AND t.revoked_at IS NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER tally_candidate_insert AFTER INSERT ON candidate
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_candidate_insert();
----
CREATE FUNCTION tally_candidate_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM image WHERE id = NEW.image_id FOR SHARE;
    INSERT INTO synset_tally_delta (synset_id, clean, rejected)
    SELECT NEW.synset_id, CLEAN(NEW, i) - CLEAN(OLD, i), REJECTED(NEW, i) - REJECTED(OLD, i)
    FROM image i WHERE i.id = NEW.image_id;
    IF (OLD.url, OLD.creator) IS DISTINCT FROM (NEW.url, NEW.creator) THEN
        PERFORM pg_advisory_xact_lock_shared(726001);
        PERFORM tally_rewithhold(ARRAY[NEW.image_id]);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_candidate_update AFTER UPDATE OF near_duplicate_of, url, creator
    ON candidate FOR EACH ROW
    WHEN ((OLD.near_duplicate_of, OLD.url, OLD.creator)
          IS DISTINCT FROM (NEW.near_duplicate_of, NEW.url, NEW.creator))
    EXECUTE FUNCTION tally_candidate_update();
----
CREATE FUNCTION tally_candidate_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO synset_tally_delta (synset_id, candidates, clean, rejected)
    SELECT o.synset_id, -count(*), -sum(CLEAN(o, i)), -sum(REJECTED(o, i))
    FROM old_rows o JOIN image i ON i.id = o.image_id GROUP BY o.synset_id;
    PERFORM tally_rewithhold(ARRAY(SELECT o.image_id FROM old_rows o
        JOIN image i ON i.id = o.image_id WHERE i.withheld));
    RETURN NULL;
END $$;
CREATE TRIGGER tally_candidate_delete AFTER DELETE ON candidate
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_candidate_delete();
----
CREATE FUNCTION tally_vote_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_votes(array_agg(candidate_id), array_agg(dn), array_agg(dyes))
    FROM (SELECT candidate_id, count(*) AS dn, count(*) FILTER (WHERE answer) AS dyes
          FROM new_rows GROUP BY candidate_id ORDER BY candidate_id) a;
    INSERT INTO annotator_tally_delta (annotator_id, VOTER_COLUMNS())
    SELECT v.annotator_id, VOTER_SUMS(v, 1) FROM VOTES_OF(new_rows) v GROUP BY v.annotator_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_vote_insert AFTER INSERT ON vote REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_vote_insert();
----
CREATE FUNCTION tally_vote_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_votes(array_agg(candidate_id), array_agg(dn), array_agg(dyes))
    FROM (SELECT candidate_id, -count(*) AS dn, -count(*) FILTER (WHERE answer) AS dyes
          FROM old_rows GROUP BY candidate_id ORDER BY candidate_id) a;
    INSERT INTO annotator_tally_delta (annotator_id, VOTER_COLUMNS())
    SELECT v.annotator_id, VOTER_SUMS(v, -1) FROM VOTES_OF(old_rows) v GROUP BY v.annotator_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_vote_delete AFTER DELETE ON vote REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_vote_delete();
----
CREATE FUNCTION tally_vote_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_votes(array_agg(candidate_id), array_agg(dn), array_agg(dyes))
    FROM (SELECT candidate_id, sum(dn) AS dn, sum(dyes) AS dyes
          FROM (VALUES (OLD.candidate_id, -1, -(CASE WHEN OLD.answer THEN 1 ELSE 0 END)),
                       (NEW.candidate_id, 1, CASE WHEN NEW.answer THEN 1 ELSE 0 END))
               d (candidate_id, dn, dyes) GROUP BY candidate_id ORDER BY candidate_id) a;
    WITH old_vote AS (SELECT OLD.*), new_vote AS (SELECT NEW.*)
    INSERT INTO annotator_tally_delta (annotator_id, VOTER_COLUMNS())
    SELECT v.annotator_id, VOTER_SUMS(v, -1) FROM VOTES_OF(old_vote) v GROUP BY v.annotator_id
    UNION ALL
    SELECT v.annotator_id, VOTER_SUMS(v, 1) FROM VOTES_OF(new_vote) v GROUP BY v.annotator_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_vote_update AFTER UPDATE OF candidate_id, answer, annotator_id, time_ms
    ON vote FOR EACH ROW
    WHEN ((OLD.candidate_id, OLD.answer, OLD.annotator_id, OLD.time_ms)
          IS DISTINCT FROM (NEW.candidate_id, NEW.answer, NEW.annotator_id, NEW.time_ms))
    EXECUTE FUNCTION tally_vote_update();
----
CREATE FUNCTION tally_takedown() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(726001);
    PERFORM tally_rewithhold(tally_takedown_images(OLD.kind, OLD.value)
                             || tally_takedown_images(NEW.kind, NEW.value));
    RETURN NULL;
END $$;
CREATE TRIGGER tally_takedown AFTER INSERT OR UPDATE OF kind, value, revoked_at OR DELETE
    ON takedown FOR EACH ROW EXECUTE FUNCTION tally_takedown();
----
CREATE FUNCTION tally_report() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_rewithhold(array_remove(ARRAY[OLD.image_id, NEW.image_id], NULL));
    RETURN NULL;
END $$;
CREATE TRIGGER tally_report AFTER INSERT OR UPDATE OF image_id, resolution OR DELETE
    ON report FOR EACH ROW EXECUTE FUNCTION tally_report();
----
CREATE FUNCTION tally_consensus_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN RETURN NULL; END IF;  -- an upsert's updates
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, sum(accepted), sum(rejected_by_vote), sum(undecided), sum(pending)
    FROM (SELECT candidate_id, DECISIONS(n, 1) FROM new_rows n) x
    JOIN candidate c ON c.id = x.candidate_id GROUP BY c.synset_id;
    -- New decisions: serialised with votes on the same items (tally_lock_items). The web
    -- app's new rows are mostly 'pending': nothing to do for them.
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE decision IN ('accepted', 'rejected')) THEN
        RETURN NULL;
    END IF;
    PERFORM tally_lock_items(ARRAY(SELECT candidate_id FROM new_rows
                                   WHERE decision IN ('accepted', 'rejected') ORDER BY 1), false);
    INSERT INTO annotator_tally_delta (annotator_id, decided, agreed)
    SELECT v.annotator_id, count(*), count(*) FILTER (WHERE v.answer = (n.decision = 'accepted'))
    FROM new_rows n JOIN vote v ON v.candidate_id = n.candidate_id
    WHERE n.decision IN ('accepted', 'rejected') GROUP BY v.annotator_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_consensus_insert AFTER INSERT ON consensus
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_consensus_insert();
----
-- Every update statement of consensus (the web app's upserts included): +1 after, -1 before.
CREATE FUNCTION tally_consensus_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Most updates (the web app's, with each vote) leave the decision as it was.
    IF NOT EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.candidate_id = n.candidate_id
                   WHERE n.decision IS DISTINCT FROM o.decision) THEN RETURN NULL; END IF;
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, sum(accepted), sum(rejected_by_vote), sum(undecided), sum(pending)
    FROM (SELECT candidate_id, DECISIONS(n, 1) FROM new_rows n
          UNION ALL SELECT candidate_id, DECISIONS(o, -1) FROM old_rows o) x
    JOIN candidate c ON c.id = x.candidate_id GROUP BY c.synset_id
    HAVING (sum(accepted), sum(rejected_by_vote), sum(undecided), sum(pending)) <> (0, 0, 0, 0);
    -- Voters of items whose decision changed: a concurrent vote on one holds its row.
    INSERT INTO annotator_tally_delta (annotator_id, decided, agreed)
    SELECT v.annotator_id, sum(x.sign), sum(x.sign * AGREES(v, x))
    FROM (SELECT n.candidate_id, 1 AS sign, n.decision
          FROM new_rows n JOIN old_rows o ON o.candidate_id = n.candidate_id
          WHERE n.decision IS DISTINCT FROM o.decision AND n.decision IN ('accepted', 'rejected')
          UNION ALL
          SELECT o.candidate_id, -1, o.decision
          FROM new_rows n JOIN old_rows o ON o.candidate_id = n.candidate_id
          WHERE n.decision IS DISTINCT FROM o.decision AND o.decision IN ('accepted', 'rejected')) x
    JOIN vote v ON v.candidate_id = x.candidate_id
    GROUP BY v.annotator_id HAVING (sum(x.sign), sum(x.sign * AGREES(v, x))) <> (0, 0);
    RETURN NULL;
END $$;
CREATE TRIGGER tally_consensus_update AFTER UPDATE ON consensus
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_consensus_update();
----
CREATE FUNCTION tally_consensus_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, sum(accepted), sum(rejected_by_vote), sum(undecided), sum(pending)
    FROM (SELECT candidate_id, DECISIONS(o, -1) FROM old_rows o) x
    JOIN candidate c ON c.id = x.candidate_id GROUP BY c.synset_id;
    INSERT INTO annotator_tally_delta (annotator_id, decided, agreed)
    SELECT v.annotator_id, -count(*), -count(*) FILTER (WHERE v.answer = (o.decision = 'accepted'))
    FROM old_rows o JOIN vote v ON v.candidate_id = o.candidate_id
    WHERE o.decision IN ('accepted', 'rejected') GROUP BY v.annotator_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_consensus_delete AFTER DELETE ON consensus
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tally_consensus_delete();
----
CREATE FUNCTION tally_fetch_failure_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO synset_tally_delta (synset_id, failed)
    SELECT synset_id, count(*) FROM new_rows WHERE NOT resolved GROUP BY synset_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_fetch_failure_insert AFTER INSERT ON fetch_failure
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_fetch_failure_insert();
----
CREATE FUNCTION tally_fetch_failure_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
                   WHERE (n.resolved, n.synset_id) IS DISTINCT FROM (o.resolved, o.synset_id))
    THEN RETURN NULL; END IF;
    INSERT INTO synset_tally_delta (synset_id, failed)
    SELECT synset_id, sum(d) FROM (
        SELECT synset_id, 1 AS d FROM new_rows WHERE NOT resolved
        UNION ALL SELECT synset_id, -1 FROM old_rows WHERE NOT resolved) x
    GROUP BY synset_id HAVING sum(d) <> 0;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_fetch_failure_update AFTER UPDATE ON fetch_failure
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_fetch_failure_update();
----
CREATE FUNCTION tally_fetch_failure_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO synset_tally_delta (synset_id, failed)
    SELECT synset_id, -count(*) FROM old_rows WHERE NOT resolved GROUP BY synset_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_fetch_failure_delete AFTER DELETE ON fetch_failure
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tally_fetch_failure_delete();
----
CREATE FUNCTION tally_gold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tally_lock_items(array_remove(ARRAY[OLD.candidate_id, NEW.candidate_id], NULL));
    INSERT INTO annotator_tally_delta (annotator_id, gold_answered, gold_correct)
    SELECT v.annotator_id, sum(g.sign), sum(g.sign * (CASE WHEN v.answer = g.answer THEN 1 ELSE 0 END))
    FROM (SELECT OLD.candidate_id, OLD.answer, -1 AS sign UNION ALL
          SELECT NEW.candidate_id, NEW.answer, 1) g (candidate_id, answer, sign)
    JOIN vote v ON v.candidate_id = g.candidate_id
    GROUP BY v.annotator_id;
    RETURN NULL;
END $$;
CREATE TRIGGER tally_gold AFTER INSERT OR UPDATE OF candidate_id, answer OR DELETE ON gold
    FOR EACH ROW EXECUTE FUNCTION tally_gold();
