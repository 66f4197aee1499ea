-- Migration 0017 (alembic/versions/0017_synset_tally.py), SQLite: the row triggers that
-- keep synset_tally_delta. One statement per group (groups are separated by lines of
-- dashes); CLEAN, REJECTED, WITHHELD, SHARE, ITEMS, DECISIONS, REWITHHOLD, TAKEN and
-- ITEM_VOTES are the migration's macros. SQLite has one writer at a time: no locks.
CREATE TRIGGER tally_image_insert AFTER INSERT ON image FOR EACH ROW
WHEN EXISTS (SELECT 1 FROM takedown t WHERE t.kind = 'sha256' AND t.value = NEW.sha256
             AND t.revoked_at IS NULL)
BEGIN UPDATE image SET withheld = 1 WHERE id = NEW.id; END
----
CREATE TRIGGER tally_image_update AFTER UPDATE OF quality, keep, reference_match, withheld
ON image FOR EACH ROW WHEN OLD.quality IS NOT NEW.quality OR OLD.keep IS NOT NEW.keep
    OR OLD.reference_match IS NOT NEW.reference_match OR OLD.withheld IS NOT NEW.withheld
BEGIN
    INSERT INTO synset_tally_delta (synset_id, clean, rejected)
    SELECT c.synset_id, sum(CLEAN(c, NEW) - CLEAN(c, OLD)),
           sum(REJECTED(c, NEW) - REJECTED(c, OLD))
    FROM candidate c WHERE c.image_id = NEW.id GROUP BY c.synset_id;
END
----
CREATE TRIGGER tally_candidate_insert AFTER INSERT ON candidate FOR EACH ROW
BEGIN
    INSERT INTO synset_tally_delta (synset_id, candidates, clean, rejected)
    SELECT NEW.synset_id, 1, CLEAN(NEW, i), REJECTED(NEW, i) FROM image i
    WHERE i.id = NEW.image_id;
    REWITHHOLD(NEW.image_id);
END
----
CREATE TRIGGER tally_candidate_update AFTER UPDATE OF near_duplicate_of, url, creator
ON candidate FOR EACH ROW WHEN OLD.near_duplicate_of IS NOT NEW.near_duplicate_of
    OR OLD.url IS NOT NEW.url OR OLD.creator IS NOT NEW.creator
BEGIN
    INSERT INTO synset_tally_delta (synset_id, clean, rejected)
    SELECT NEW.synset_id, CLEAN(NEW, i) - CLEAN(OLD, i), REJECTED(NEW, i) - REJECTED(OLD, i)
    FROM image i WHERE i.id = NEW.image_id;
    REWITHHOLD(NEW.image_id);
END
----
CREATE TRIGGER tally_candidate_delete AFTER DELETE ON candidate FOR EACH ROW
BEGIN
    INSERT INTO synset_tally_delta (synset_id, candidates, clean, rejected)
    SELECT OLD.synset_id, -1, -CLEAN(OLD, i), -REJECTED(OLD, i) FROM image i
    WHERE i.id = OLD.image_id;
    REWITHHOLD(OLD.image_id);
END
----
CREATE TRIGGER tally_vote_insert AFTER INSERT ON vote FOR EACH ROW
BEGIN ITEM_VOTES(NEW.candidate_id, 1, NEW, 1); END
----
CREATE TRIGGER tally_vote_delete AFTER DELETE ON vote FOR EACH ROW
BEGIN ITEM_VOTES(OLD.candidate_id, -1, -OLD, 1); END
----
CREATE TRIGGER tally_vote_update AFTER UPDATE OF candidate_id, answer ON vote FOR EACH ROW
WHEN OLD.candidate_id IS NOT NEW.candidate_id OR OLD.answer IS NOT NEW.answer
BEGIN
    ITEM_VOTES(NEW.candidate_id, 0, NEW -OLD, OLD.candidate_id = NEW.candidate_id);
    ITEM_VOTES(OLD.candidate_id, -1, -OLD, OLD.candidate_id <> NEW.candidate_id);
    ITEM_VOTES(NEW.candidate_id, 1, NEW, OLD.candidate_id <> NEW.candidate_id);
END
----
CREATE TRIGGER tally_consensus_insert AFTER INSERT ON consensus FOR EACH ROW
BEGIN
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, DECISIONS(NEW, 1) FROM candidate c WHERE c.id = NEW.candidate_id;
END
----
CREATE TRIGGER tally_consensus_update AFTER UPDATE OF candidate_id, decision ON consensus
FOR EACH ROW WHEN OLD.candidate_id IS NOT NEW.candidate_id OR OLD.decision IS NOT NEW.decision
BEGIN
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, DECISIONS(OLD, -1) FROM candidate c WHERE c.id = OLD.candidate_id;
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, DECISIONS(NEW, 1) FROM candidate c WHERE c.id = NEW.candidate_id;
END
----
CREATE TRIGGER tally_consensus_delete AFTER DELETE ON consensus FOR EACH ROW
BEGIN
    INSERT INTO synset_tally_delta (synset_id, accepted, rejected_by_vote, undecided, pending)
    SELECT c.synset_id, DECISIONS(OLD, -1) FROM candidate c WHERE c.id = OLD.candidate_id;
END
----
CREATE TRIGGER tally_fetch_failure_insert AFTER INSERT ON fetch_failure FOR EACH ROW
WHEN NOT NEW.resolved
BEGIN INSERT INTO synset_tally_delta (synset_id, failed) VALUES (NEW.synset_id, 1); END
----
CREATE TRIGGER tally_fetch_failure_update AFTER UPDATE OF synset_id, resolved ON fetch_failure
FOR EACH ROW WHEN OLD.synset_id IS NOT NEW.synset_id OR OLD.resolved IS NOT NEW.resolved
BEGIN
    INSERT INTO synset_tally_delta (synset_id, failed)
    VALUES (OLD.synset_id, CASE WHEN OLD.resolved THEN 0 ELSE -1 END),
           (NEW.synset_id, CASE WHEN NEW.resolved THEN 0 ELSE 1 END);
END
----
CREATE TRIGGER tally_fetch_failure_delete AFTER DELETE ON fetch_failure FOR EACH ROW
WHEN NOT OLD.resolved
BEGIN INSERT INTO synset_tally_delta (synset_id, failed) VALUES (OLD.synset_id, -1); END
----
CREATE TRIGGER tally_takedown_insert AFTER INSERT ON takedown FOR EACH ROW
BEGIN TAKEN(NEW); END
----
CREATE TRIGGER tally_takedown_update AFTER UPDATE OF kind, value, revoked_at ON takedown
FOR EACH ROW BEGIN TAKEN(OLD); TAKEN(NEW); END
----
CREATE TRIGGER tally_takedown_delete AFTER DELETE ON takedown FOR EACH ROW
BEGIN TAKEN(OLD); END
----
CREATE TRIGGER tally_report_insert AFTER INSERT ON report FOR EACH ROW
BEGIN REWITHHOLD(NEW.image_id); END
----
CREATE TRIGGER tally_report_update AFTER UPDATE OF image_id, resolution ON report FOR EACH ROW
BEGIN REWITHHOLD(OLD.image_id, NEW.image_id); END
----
CREATE TRIGGER tally_report_delete AFTER DELETE ON report FOR EACH ROW
BEGIN REWITHHOLD(OLD.image_id); END
----
CREATE TRIGGER tally_voter_insert AFTER INSERT ON vote FOR EACH ROW
BEGIN VOTER_DELTA(NEW, 1); END
----
CREATE TRIGGER tally_voter_delete AFTER DELETE ON vote FOR EACH ROW
BEGIN VOTER_DELTA(OLD, -1); END
----
CREATE TRIGGER tally_voter_update
AFTER UPDATE OF annotator_id, candidate_id, answer, time_ms ON vote FOR EACH ROW
BEGIN VOTER_DELTA(OLD, -1); VOTER_DELTA(NEW, 1); END
----
CREATE TRIGGER tally_decided_insert AFTER INSERT ON consensus FOR EACH ROW
BEGIN DECIDED_DELTA(NEW, 1); END
----
CREATE TRIGGER tally_decided_update AFTER UPDATE OF candidate_id, decision ON consensus
FOR EACH ROW WHEN OLD.candidate_id IS NOT NEW.candidate_id OR OLD.decision IS NOT NEW.decision
BEGIN DECIDED_DELTA(OLD, -1); DECIDED_DELTA(NEW, 1); END
----
CREATE TRIGGER tally_decided_delete AFTER DELETE ON consensus FOR EACH ROW
BEGIN DECIDED_DELTA(OLD, -1); END
----
CREATE TRIGGER tally_gold_insert AFTER INSERT ON gold FOR EACH ROW
BEGIN GOLD_DELTA(NEW, 1); END
----
CREATE TRIGGER tally_gold_update AFTER UPDATE OF candidate_id, answer ON gold FOR EACH ROW
BEGIN GOLD_DELTA(OLD, -1); GOLD_DELTA(NEW, 1); END
----
CREATE TRIGGER tally_gold_delete AFTER DELETE ON gold FOR EACH ROW
BEGIN GOLD_DELTA(OLD, -1); END
