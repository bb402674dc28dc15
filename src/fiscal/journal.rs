//! `storenode journal verify|export --db PATH`: the VERI*FACTU records of a database file,
//! read back from `fiscal_records` in chain order. Verify recomputes every `Huella`, link and
//! number and names the first record where a chain stops holding; export writes the records
//! with the AEAT's field names (JSON lines) or as the AEAT's registration XML.

use super::xml::{self, System, RECORDS_PER_MESSAGE_MAX};
use crate::domain::fiscal::huella::amount;
use crate::domain::fiscal::{ChainBreak, InvoiceRecord, RecordKind, Verifier};
use crate::store::fiscal::{self as sql, RowError};
use crate::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::Path;

/// Records read per query.
const PAGE_RECORDS: usize = 10_000;

/// Why a journal could not be verified or exported.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store's chain stops holding at a record.
    #[error("store {store}: {at}")]
    Broken { store: String, at: ChainBreak },
    /// A row no longer decodes into a record.
    #[error("store {store}: {row}")]
    Unreadable { store: String, row: RowError },
    #[error("writing the export: {0}")]
    Output(#[from] std::io::Error),
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> JournalError {
        JournalError::Store(e.into())
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Xml,
}

/// Open a database file read-only, refusing what is not a storenode database.
fn open(path: &Path) -> Result<Connection, JournalError> {
    crate::store::schema::check_existing(path)?;
    if !path.exists() {
        return Err(StoreError::Migration(0, format!("{} does not exist", path.display())).into());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError::checking(path, e))?;
    Ok(conn)
}

/// Visit every store's records in chain order, page by page.
fn each_record(
    conn: &Connection,
    mut visit: impl FnMut(&str, Option<&InvoiceRecord>, &InvoiceRecord) -> Result<(), JournalError>,
) -> Result<(), JournalError> {
    for store in sql::stores(conn)? {
        let mut after = 0;
        let mut previous: Option<InvoiceRecord> = None;
        loop {
            let page = sql::records(conn, &store, after, PAGE_RECORDS)?;
            if page.is_empty() {
                break;
            }
            for row in page {
                let r = row.map_err(|row| JournalError::Unreadable {
                    store: store.clone(),
                    row,
                })?;
                visit(&store, previous.as_ref(), &r)?;
                after = r.position;
                previous = Some(r);
            }
        }
    }
    Ok(())
}

/// Check every store's chain in the file. `Ok` holds `(store, records)` per store.
pub fn verify(path: &Path) -> Result<Vec<(String, u64)>, JournalError> {
    let conn = open(path)?;
    let mut out: Vec<(String, u64)> = Vec::new();
    let mut verifier = Verifier::default();
    each_record(&conn, |store, _, r| {
        if out.last().map(|(s, _)| s.as_str()) != Some(store) {
            out.push((store.to_string(), 0));
            verifier = Verifier::default();
        }
        verifier.push(r).map_err(|at| JournalError::Broken {
            store: store.to_string(),
            at,
        })?;
        if let Some(last) = out.last_mut() {
            last.1 = verifier.records();
        }
        Ok(())
    })?;
    Ok(out)
}

/// Write every record to `out` in chain order (per store).
pub fn export(path: &Path, format: Format, out: &mut dyn Write) -> Result<u64, JournalError> {
    let conn = open(path)?;
    let mut n = 0;
    match format {
        Format::Jsonl => each_record(&conn, |store, _, r| {
            writeln!(out, "{}", Value::Object(json_record(store, r)))?;
            n += 1;
            Ok(())
        })?,
        Format::Xml => {
            writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
            let mut batch = XmlBatch::default();
            each_record(&conn, |store, previous, r| {
                if store != batch.store || batch.records.len() == RECORDS_PER_MESSAGE_MAX {
                    batch.flush(out)?;
                    batch.store = store.to_string();
                    batch.before = previous.cloned();
                }
                batch.records.push(r.clone());
                n += 1;
                Ok(())
            })?;
            batch.flush(out)?;
        }
    }
    Ok(n)
}

/// Records of one store waiting to be written as one `RegFactuSistemaFacturacion`.
#[derive(Default)]
struct XmlBatch {
    store: String,
    /// The record before the first one, for its `Encadenamiento`.
    before: Option<InvoiceRecord>,
    records: Vec<InvoiceRecord>,
}

impl XmlBatch {
    fn flush(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let Some(first) = self.records.first() else {
            return Ok(());
        };
        let system = system_of(&self.store, first);
        writeln!(
            out,
            "{}",
            xml::registration(&system, self.before.as_ref(), &self.records)
        )?;
        self.records.clear();
        Ok(())
    }
}

/// The billing system of a store's records.
pub fn system_of(store: &str, r: &InvoiceRecord) -> System {
    System {
        producer_name: r.issuer_name.clone(),
        producer_nif: r.issuer_nif.clone(),
        installation: store.to_string(),
    }
}

/// One record with the AEAT's field names (DESIGN.md section 17), amounts as hashed.
pub fn json_record(store: &str, r: &InvoiceRecord) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("store", json!(store));
    put("position", json!(r.position));
    match r.kind {
        RecordKind::Alta => {
            put("IDEmisorFactura", json!(r.issuer_nif));
            put("NumSerieFactura", json!(r.numserie()));
            put("FechaExpedicionFactura", json!(r.fecha));
            put("TipoFactura", json!(r.tipo.as_str()));
            put("CuotaTotal", json!(amount(r.cuota_cents)));
            put("ImporteTotal", json!(amount(r.importe_cents)));
        }
        RecordKind::Anulacion => {
            put("IDEmisorFacturaAnulada", json!(r.issuer_nif));
            put("NumSerieFacturaAnulada", json!(r.numserie()));
            put("FechaExpedicionFacturaAnulada", json!(r.fecha));
        }
    }
    put("Huella", json!(r.huella));
    put("HuellaAnterior", json!(r.previous));
    put("FechaHoraHusoGenRegistro", json!(r.generated_at));
    put("NombreRazonEmisor", json!(r.issuer_name));
    put("RefExterna", json!(r.reference));
    if let Some(orig) = &r.rectifies {
        put("TipoRectificativa", json!("I"));
        put(
            "FacturasRectificadas",
            json!([{"NumSerieFactura": orig.numserie, "FechaExpedicionFactura": orig.fecha}]),
        );
    }
    if let Some(nif) = &r.customer_tax_id {
        put("Destinatarios", json!([{ "NIF": nif }]));
    }
    let desglose: Vec<Value> = r
        .vat
        .iter()
        .map(|v| {
            json!({
                "TipoImpositivo": amount(i64::from(v.vat_bp)),
                "BaseImponibleOimporteNoSujeto": amount(v.base_cents),
                "CuotaRepercutida": amount(v.cuota_cents),
            })
        })
        .collect();
    put("Desglose", Value::Array(desglose));
    m
}

/// `storenode journal verify`: prints `ok: <n> records` or fails naming the first bad record.
pub fn verify_command(db: &Path) -> anyhow::Result<()> {
    let stores = verify(db)?;
    for (store, n) in &stores {
        println!("{store}: {n} records, chain intact");
    }
    let total: u64 = stores.iter().map(|(_, n)| n).sum();
    println!("ok: {total} records");
    Ok(())
}

/// `storenode journal export`: every record on stdout.
pub fn export_command(db: &Path, format: &str) -> anyhow::Result<()> {
    let format = match format {
        "xml" => Format::Xml,
        _ => Format::Jsonl,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    export(db, format, &mut out)?;
    out.flush()?;
    Ok(())
}
