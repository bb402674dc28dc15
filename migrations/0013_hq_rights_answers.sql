-- Which request for rights back (`RightsReturnRequested`, by its op) each of HQ's answering
-- `StockTransfer`s answers (src/sync/returns.rs). Written in the answer's transaction; with
-- `[storage] url` the journal copies the group's rows into PostgreSQL's `hq_rights_answers`
-- in the same PostgreSQL transaction as the op (src/store/pg/rights.rs).
CREATE TABLE hq_rights_answers (
    actor      TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    answer_seq INTEGER NOT NULL,
    PRIMARY KEY (actor, seq)
);
CREATE INDEX hq_rights_answers_by_answer ON hq_rights_answers (answer_seq);
