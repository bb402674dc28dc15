-- VERI*FACTU invoice records (DESIGN.md section 13): one row per record of each store's chain,
-- written with the op that issues it (at the store) or brings it (at HQ), in its transaction.
-- `storenode journal verify` reads them back in position order and recomputes every hash,
-- link and number; `vat` is `vat_bp:base_cents:cuota_cents` per rate, joined by `;`.
CREATE TABLE fiscal_records (
    store TEXT NOT NULL,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL,
    issuer_nif TEXT NOT NULL,
    issuer_name TEXT NOT NULL,
    series TEXT NOT NULL,
    number INTEGER NOT NULL,
    fecha TEXT NOT NULL,
    tipo TEXT NOT NULL,
    cuota_cents INTEGER NOT NULL,
    importe_cents INTEGER NOT NULL,
    vat TEXT NOT NULL,
    customer_tax_id TEXT,
    rectifies_numserie TEXT,
    rectifies_fecha TEXT,
    reference TEXT NOT NULL,
    generated_at TEXT NOT NULL,
    previous TEXT NOT NULL,
    huella TEXT NOT NULL,
    PRIMARY KEY (store, position)
);

-- The AEAT's answer for each submitted record (src/fiscal/aeat.rs). A record with no row here
-- and a position above the store's mark in `fiscal_submission_marks` is still to be sent.
CREATE TABLE fiscal_submissions (
    store TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    code TEXT,
    message TEXT,
    csv TEXT,
    answered_ms INTEGER NOT NULL,
    PRIMARY KEY (store, position)
);

-- Per store: every record up to `position` has its answer; when the next batch may go
-- (`TiempoEsperaEnvio` or backoff); failed attempts in a row and the last failure.
CREATE TABLE fiscal_submission_marks (
    store TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    next_send_ms INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    last_error TEXT
);
