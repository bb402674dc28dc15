//! The SQL of the VERI*FACTU journal (migrations/0007_fiscal.sql): records as materialised
//! from `Invoice` ops, read back in chain order for `journal verify` and `export`, and the
//! AEAT submission marks and answers. Rows are decoded strictly: a field that no longer
//! parses (someone edited the file) is an error naming the record, never a guess.

use crate::domain::fiscal::{InvoiceRecord, InvoiceRef, InvoiceType, RecordKind, VatLine};
use crate::domain::{Op, Payload, StoreId};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

/// A row of `fiscal_records` that does not decode into a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {position}: field {field} holds {value:?}, which is not valid")]
pub struct RowError {
    pub position: u64,
    pub field: &'static str,
    pub value: String,
}

/// The row written in the same transaction as `op` itself: an `Invoice`'s journal record (the
/// fiscal chain is read from `fiscal_records` and must never lag its op).
pub fn record_with_op(tx: &Transaction, op: &Op) -> rusqlite::Result<()> {
    match &op.payload {
        Payload::Invoice { store, record } => insert_record(tx, store, record),
        _ => Ok(()),
    }
}

/// Write a record's row (once: the op log applies each op once; a replay finds it there).
pub fn insert_record(tx: &Transaction, store: &StoreId, r: &InvoiceRecord) -> rusqlite::Result<()> {
    let vat: Vec<String> = r
        .vat
        .iter()
        .map(|v| format!("{}:{}:{}", v.vat_bp, v.base_cents, v.cuota_cents))
        .collect();
    tx.prepare_cached(
        "INSERT INTO fiscal_records (store, position, kind, issuer_nif, issuer_name, series,
           number, fecha, tipo, cuota_cents, importe_cents, vat, customer_tax_id,
           rectifies_numserie, rectifies_fecha, reference, generated_at, previous, huella)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (store, position) DO NOTHING",
    )?
    .execute(params![
        store.as_str(),
        r.position as i64,
        r.kind.as_str(),
        r.issuer_nif,
        r.issuer_name,
        r.series,
        r.number as i64,
        r.fecha,
        r.tipo.as_str(),
        r.cuota_cents,
        r.importe_cents,
        vat.join(";"),
        r.customer_tax_id,
        r.rectifies.as_ref().map(|x| x.numserie.as_str()),
        r.rectifies.as_ref().map(|x| x.fecha.as_str()),
        r.reference,
        r.generated_at,
        r.previous,
        r.huella,
    ])?;
    Ok(())
}

const COLUMNS: &str = "position, kind, issuer_nif, issuer_name, series, number, fecha, tipo,
    cuota_cents, importe_cents, vat, customer_tax_id, rectifies_numserie, rectifies_fecha,
    reference, generated_at, previous, huella";

/// Stores that have records in this file, in name order.
pub fn stores(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT store FROM fiscal_records ORDER BY store")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// A store's records with `position > after`, in position order, at most `limit`.
pub fn records(
    conn: &Connection,
    store: &str,
    after: u64,
    limit: usize,
) -> rusqlite::Result<Vec<Result<InvoiceRecord, RowError>>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM fiscal_records WHERE store = ?1 AND position > ?2
         ORDER BY position LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![store, after as i64, limit as i64], decode)?;
    rows.collect()
}

/// The record at `position` of a store's chain, if it is there and decodes.
pub fn record_at(
    conn: &Connection,
    store: &str,
    position: u64,
) -> rusqlite::Result<Option<InvoiceRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM fiscal_records WHERE store = ?1 AND position = ?2"
    ))?;
    Ok(stmt
        .query_row(params![store, position as i64], decode)
        .optional()?
        .and_then(Result::ok))
}

fn decode(row: &Row) -> rusqlite::Result<Result<InvoiceRecord, RowError>> {
    let position = row.get::<_, i64>(0)? as u64;
    let bad = |field: &'static str, value: &str| RowError {
        position,
        field,
        value: value.to_string(),
    };
    let kind: String = row.get(1)?;
    let tipo: String = row.get(7)?;
    let vat: String = row.get(10)?;
    let kind = match kind.as_str() {
        "alta" => RecordKind::Alta,
        "anulacion" => RecordKind::Anulacion,
        _ => return Ok(Err(bad("kind", &kind))),
    };
    let Some(tipo_parsed) = InvoiceType::parse(&tipo) else {
        return Ok(Err(bad("tipo", &tipo)));
    };
    let Some(vat_lines) = parse_vat(&vat) else {
        return Ok(Err(bad("vat", &vat)));
    };
    let rectifies = match (
        row.get::<_, Option<String>>(12)?,
        row.get::<_, Option<String>>(13)?,
    ) {
        (Some(numserie), Some(fecha)) => Some(InvoiceRef { numserie, fecha }),
        _ => None,
    };
    Ok(Ok(InvoiceRecord {
        position,
        kind,
        issuer_nif: row.get(2)?,
        issuer_name: row.get(3)?,
        series: row.get(4)?,
        number: row.get::<_, i64>(5)? as u64,
        fecha: row.get(6)?,
        tipo: tipo_parsed,
        cuota_cents: row.get(8)?,
        importe_cents: row.get(9)?,
        vat: vat_lines,
        customer_tax_id: row.get(11)?,
        rectifies,
        reference: row.get(14)?,
        generated_at: row.get(15)?,
        previous: row.get(16)?,
        huella: row.get(17)?,
    }))
}

fn parse_vat(text: &str) -> Option<Vec<VatLine>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(';')
        .map(|part| {
            let mut it = part.split(':');
            let line = VatLine {
                vat_bp: it.next()?.parse().ok()?,
                base_cents: it.next()?.parse().ok()?,
                cuota_cents: it.next()?.parse().ok()?,
            };
            it.next().is_none().then_some(line)
        })
        .collect()
}

/// Where a store's AEAT submission stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmissionMark {
    /// Every record up to here has its answer.
    pub position: u64,
    /// No batch before this instant (the AEAT's `TiempoEsperaEnvio`, or backoff).
    pub next_send_ms: u64,
    /// Failed attempts in a row (transport errors, refused envelopes).
    pub failures: u32,
    pub last_error: Option<String>,
}

pub fn submission_mark(conn: &Connection, store: &str) -> rusqlite::Result<SubmissionMark> {
    Ok(conn
        .prepare_cached(
            "SELECT position, next_send_ms, failures, last_error
             FROM fiscal_submission_marks WHERE store = ?1",
        )?
        .query_row(params![store], |r| {
            Ok(SubmissionMark {
                position: r.get::<_, i64>(0)? as u64,
                next_send_ms: r.get::<_, i64>(1)? as u64,
                failures: r.get::<_, i64>(2)? as u32,
                last_error: r.get(3)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

pub fn set_submission_mark(
    tx: &Connection,
    store: &str,
    mark: &SubmissionMark,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO fiscal_submission_marks (store, position, next_send_ms, failures, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (store) DO UPDATE SET position = excluded.position,
           next_send_ms = excluded.next_send_ms, failures = excluded.failures,
           last_error = excluded.last_error",
    )?
    .execute(params![
        store,
        mark.position as i64,
        mark.next_send_ms as i64,
        i64::from(mark.failures),
        mark.last_error,
    ])?;
    Ok(())
}

/// The AEAT's answer for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordAnswer {
    pub position: u64,
    /// `accepted`, `accepted_with_errors` or `rejected`.
    pub status: String,
    pub code: Option<String>,
    pub message: Option<String>,
    pub csv: Option<String>,
}

pub fn save_answer(
    tx: &Connection,
    store: &str,
    a: &RecordAnswer,
    now_ms: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO fiscal_submissions (store, position, status, code, message, csv, answered_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (store, position) DO UPDATE SET status = excluded.status,
           code = excluded.code, message = excluded.message, csv = excluded.csv,
           answered_ms = excluded.answered_ms",
    )?
    .execute(params![
        store,
        a.position as i64,
        a.status,
        a.code,
        a.message,
        a.csv,
        now_ms as i64
    ])?;
    Ok(())
}

/// Every answer kept for a store, in position order.
pub fn answers(conn: &Connection, store: &str) -> rusqlite::Result<Vec<RecordAnswer>> {
    let mut stmt = conn.prepare_cached(
        "SELECT position, status, code, message, csv FROM fiscal_submissions
         WHERE store = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map(params![store], |r| {
        Ok(RecordAnswer {
            position: r.get::<_, i64>(0)? as u64,
            status: r.get(1)?,
            code: r.get(2)?,
            message: r.get(3)?,
            csv: r.get(4)?,
        })
    })?;
    rows.collect()
}
