-- HQ side tables for customers (DESIGN.md section 14) and the signed webhook events that
-- replace the ready-only queue. None of them holds personal data: customers appear by id.

-- Ops that can carry personal data, found without a scan of the whole log when a customer is
-- erased (src/store/erasure.rs; the kinds are domain::erasure::PERSONAL_KINDS).
CREATE INDEX ops_personal ON ops (kind) WHERE kind IN ('customer_update', 'consent_set');

-- One row per customer erasure HQ accepted: the CustomerErase op, to follow it store by store.
CREATE TABLE hq_erasures (
    customer     TEXT PRIMARY KEY,
    actor        TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    requested_ms INTEGER NOT NULL
);

-- Contacts recorded through the API, for the contact policy's weekly limit.
CREATE TABLE hq_contacts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    customer TEXT    NOT NULL,
    channel  TEXT    NOT NULL,
    campaign TEXT    NOT NULL,
    at_ms    INTEGER NOT NULL
);
CREATE INDEX hq_contacts_customer ON hq_contacts (customer, at_ms);

-- Webhook events, delivered in order of creation until a 2xx. `dedup` makes each event
-- happen once: `order.ready:<order>`, `cart.abandoned:<customer>:<cart version>`, ...
CREATE TABLE hq_webhook_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    type            TEXT    NOT NULL,
    dedup           TEXT    NOT NULL UNIQUE,
    body            TEXT    NOT NULL,
    created_ms      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    delivered_ms    INTEGER
);
CREATE INDEX hq_webhook_events_due ON hq_webhook_events (delivered_ms, next_attempt_ms);

-- Ready notifications queued by the older binary become order.ready events (pending ones are
-- still delivered, delivered ones are not sent again).
INSERT INTO hq_webhook_events
    (event_id, type, dedup, body, created_ms, attempts, next_attempt_ms, last_error, delivered_ms)
SELECT 'evt_' || lower(hex(randomblob(16))), 'order.ready', 'order.ready:' || order_id,
       json_object('order', order_id, 'store', store, 'status', 'ready',
                   'pickup_code', pickup_code),
       next_attempt_ms, attempts, next_attempt_ms, last_error, delivered_ms
FROM hq_webhook_jobs;

-- Orders that were handed over or cancelled before events existed are not announced now.
INSERT OR IGNORE INTO hq_webhook_events
    (event_id, type, dedup, body, created_ms, next_attempt_ms, delivered_ms)
SELECT 'evt_' || lower(hex(randomblob(16))),
       CASE status WHEN 'handed_over' THEN 'order.handed_over' ELSE 'order.cancelled' END,
       CASE status WHEN 'handed_over' THEN 'order.handed_over:' ELSE 'order.cancelled:' END || id,
       '{}', 0, 0, 0
FROM orders WHERE status IN ('handed_over', 'cancelled', 'expired');
