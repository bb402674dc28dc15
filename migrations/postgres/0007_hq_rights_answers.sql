-- HQ's answers to stores asking for rights back (`RightsReturnRequested`), shared by every HQ
-- process (src/store/pg/rights.rs, src/sync/returns.rs): one row per request answered, keyed
-- by the request op, inserted in the PostgreSQL transaction of the answering `StockTransfer`
-- (`answer_seq`, HQ's seq) or alone when HQ had nothing to give (`answer_seq` NULL). The
-- primary key is the fence: a second answer to one request fails its whole transaction, so
-- a request is answered once whichever process answers it and whoever dies when.
CREATE TABLE hq_rights_answers (
    actor      text   NOT NULL,
    seq        bigint NOT NULL,
    answer_seq bigint,
    PRIMARY KEY (actor, seq)
);
-- Requests already in the log were answered (or are being answered) by the per-process marks
-- of the binary before this one: count them as answered, so none is answered twice. One still
-- unanswered at the upgrade stays so; the store may ask again.
INSERT INTO hq_rights_answers (actor, seq)
SELECT actor, seq FROM ops WHERE kind = 'rights_return_requested';
