//! VERI*FACTU end to end (DESIGN.md sections 13 and 17): sales issue invoices in the store's
//! gapless series, the receipt prints the AEAT QR (decoded here from the emulator's PNG), a
//! return issues a rectifying invoice, `storenode journal verify` catches a changed, deleted
//! or swapped record in the SQLite file, `export` writes the AEAT field names, and HQ checks
//! each store's chain as records arrive over MQTT.

mod sync_support;
mod terminal_support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use storenode::devices::printer_sim::decoder::{Decoder, Output};
use storenode::devices::printer_sim::render::to_png_image;
use storenode::domain::fiscal::{InvoiceDraft, InvoiceType, Issuer, TaxId};
use storenode::domain::{Payload, StoreId};
use storenode::fiscal::{with_invoice, FiscalSetup, InvoiceFor};
use storenode::store::Node;
use terminal_support::Fixture;

const QR_BASE: &str = "https://prewww2.aeat.es/wlpl/TIKE-CONT/ValidarQR";

fn setup(series: &str) -> Arc<FiscalSetup> {
    Arc::new(FiscalSetup {
        issuer: Issuer {
            nif: TaxId::parse("89890001K").unwrap(),
            name: "Tiendas Demo SL".into(),
            series: series.into(),
        },
        address: vec!["Calle Mayor 1, 28013 Madrid".into()],
        zone: jiff::tz::TimeZone::get("Europe/Madrid").unwrap(),
        qr_base_url: QR_BASE.into(),
    })
}

async fn fiscal_fixture() -> Fixture {
    Fixture::with_config(|c| c.fiscal = Some(setup("MAD1"))).await
}

fn chain_len(node: &Node, store: &StoreId) -> u64 {
    node.read(|r| r.state().fiscal.get(store).map_or(0, |c| c.records))
}

#[tokio::test]
async fn a_sale_is_an_invoice_of_the_series_and_a_tax_id_makes_it_a_full_one() {
    let f = fiscal_fixture().await;
    let cookie = f.login("1001", "1234").await;
    let sell = |body: Value| f.call(Method::POST, "/api/v1/sales", Some(body), Some(&cookie));
    let (status, _, first) =
        sell(json!({"lines": [{"sku": "SKU-1", "qty": 1}], "tender": "card"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["invoice"], "MAD1-1");
    let (_, _, second) = sell(json!({
        "lines": [{"sku": "SKU-2", "qty": 2}], "tender": "cash", "customer_tax_id": "b-12345674"
    }))
    .await;
    assert_eq!(second["invoice"], "MAD1-2");
    let store = terminal_support::store();
    let tipos = f.node.read(|r| {
        let chain = r.state().fiscal.get(&store).unwrap();
        [
            first["id"].as_str().unwrap(),
            second["id"].as_str().unwrap(),
        ]
        .map(|id| chain.invoice_for(id).unwrap().tipo)
    });
    assert_eq!(tipos, [InvoiceType::F2, InvoiceType::F1]);

    // A bad check letter is refused with the reason, and nothing is sold or numbered.
    let (status, _, err) = sell(json!({
        "lines": [{"sku": "SKU-1", "qty": 1}], "tender": "card", "customer_tax_id": "B12345675"
    }))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"], "invalid_customer_tax_id");
    assert_eq!(err["field"], "customer_tax_id");
    assert!(
        err["message"].as_str().unwrap().contains("expected 4"),
        "{err}"
    );
    assert_eq!(chain_len(&f.node, &store), 2);

    // A refused sale (no stock) takes no number either: the next one is MAD1-3.
    let (status, _, _) =
        sell(json!({"lines": [{"sku": "SKU-4", "qty": 1}], "tender": "card"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, _, third) =
        sell(json!({"lines": [{"sku": "SKU-1", "qty": 1}], "tender": "card"})).await;
    assert_eq!(third["invoice"], "MAD1-3");

    let uri = format!("/api/v1/sales/{}", second["id"].as_str().unwrap());
    let (status, _, sale) = f.call(Method::GET, &uri, None, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sale["invoice"], "MAD1-2");
    assert_eq!(sale["store"], "madrid-centro");
    assert_eq!(sale["tender"], "cash");
    assert_eq!(sale["total_cents"], 198);
    // The contract's fields of each line (the answer may carry more: name, returnable, ...).
    let lines = sale["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{sale}");
    for (field, want) in [
        ("sku", json!("SKU-2")),
        ("qty", json!(2)),
        ("price_cents", json!(99)),
        ("returned", json!(0)),
    ] {
        assert_eq!(lines[0][field], want, "{field} in {sale}");
    }
    let (status, _, err) = f
        .call(Method::GET, "/api/v1/sales/S-nope", None, Some(&cookie))
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_sale"))
    );
}

/// The receipt bytes the terminal queued for printing, decoded by the printer emulator.
async fn printed_receipt(node: &Node) -> Vec<storenode::devices::printer_sim::decoder::Item> {
    let bytes: Vec<u8> = node
        .query(|c| {
            c.query_row(
                "SELECT payload FROM print_job WHERE kind = 'receipt' ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
        })
        .await
        .unwrap();
    let mut decoder = Decoder::new();
    let mut jobs: Vec<_> = decoder
        .feed(&bytes)
        .into_iter()
        .filter_map(|o| match o {
            Output::Job(items) => Some(items),
            Output::Status(_) => None,
        })
        .collect();
    jobs.extend(decoder.finish());
    assert_eq!(jobs.len(), 1);
    jobs.remove(0)
}

#[tokio::test]
async fn the_receipt_prints_the_invoice_and_a_qr_that_decodes_to_the_aeat_url() {
    let f = fiscal_fixture().await;
    let cookie = f.login("1001", "1234").await;
    let (_, _, sale) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-2", "qty": 1}], "tender": "cash"})),
            Some(&cookie),
        )
        .await;
    assert_eq!(sale["invoice"], "MAD1-1");
    let store = terminal_support::store();
    let record = f
        .node
        .query(move |c| storenode::store::fiscal::record_at(c, store.as_str(), 1))
        .await
        .unwrap()
        .unwrap();
    let expected_url = format!(
        "{QR_BASE}?nif=89890001K&numserie=MAD1-1&fecha={}&importe=7.97",
        record.fecha
    );

    let items = printed_receipt(&f.node).await;
    let text = storenode::devices::printer_sim::render::to_text(&items);
    for expected in [
        "Tiendas Demo SL",
        "NIF 89890001K",
        "Factura simplificada MAD1-1",
        &record.fecha,
        "Café molido natural 250 g",
        "IVA incluido",
        "10 %",
        "4 %",
        "VERI*FACTU",
        "QR tributario:",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let png = to_png_image(&items);
    let path = std::env::var_os("FISCAL_RECEIPT_PNG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| f.dir.path().join("receipt.png"));
    png.save(&path).unwrap();
    let img = image::open(&path).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    // Two QR codes: the AEAT's, and the sale's own reference (`SR1:...`) that starts a return.
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 2, "the AEAT QR and the sale reference");
    let decoded: Vec<_> = grids.iter().map(|g| g.decode().unwrap()).collect();
    assert!(
        decoded
            .iter()
            .any(|(_, c)| c.starts_with("SR1:madrid-centro:")),
        "sale reference missing"
    );
    let aeat = decoded
        .iter()
        .position(|(_, c)| *c == expected_url)
        .expect("the AEAT QR decodes to the validation URL");
    let (meta, _) = &decoded[aeat];
    assert_eq!(
        meta.ecc_level, 0,
        "error correction M (rqrr numbers M as 0)"
    );
    assert!(
        grids[aeat].bounds[1].x - grids[aeat].bounds[0].x >= 200,
        "printed large enough to scan"
    );
}

/// Issue `n` invoices (each for an empty change) in `node`'s chain.
async fn issue(node: &Node, store: &StoreId, setup: &Arc<FiscalSetup>, n: u32) {
    for i in 0..n {
        let draft = InvoiceDraft::sale(
            &format!("S-{i}"),
            [(1, 1210 + i64::from(i), 2100), (2, 500, 1000)],
            None,
        );
        let build = with_invoice(
            setup.clone(),
            store.clone(),
            vec![],
            InvoiceFor::Sale(draft),
        );
        node.submit_built(build, |_, _| Ok(())).await.unwrap();
    }
}

#[tokio::test]
async fn concurrent_sales_get_consecutive_numbers_and_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreId::parse("madrid-centro").unwrap();
    let node = Node::open(&dir.path().join("s.db"), store.actor()).unwrap();
    let setup = setup("MAD1");
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (node, store, setup) = (node.clone(), store.clone(), setup.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let draft = InvoiceDraft::sale(&format!("S-{w}-{i}"), [(1, 100, 2100)], None);
                let build = with_invoice(
                    setup.clone(),
                    store.clone(),
                    vec![],
                    InvoiceFor::Sale(draft),
                );
                node.submit_built(build, |_, _| Ok(())).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(chain_len(&node, &store), 200);
    drop(node);
    let out = journal(&["verify", "--db"], &dir.path().join("s.db"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 200 records"));
}

#[tokio::test]
async fn a_return_issues_a_rectifying_invoice_naming_the_original() {
    let f = fiscal_fixture().await;
    let cookie = f.login("1001", "1234").await;
    let (_, _, simple) = f
        .call(
            Method::POST,
            "/api/v1/sales",
            Some(json!({"lines": [{"sku": "SKU-1", "qty": 2}], "tender": "card"})),
            Some(&cookie),
        )
        .await;
    let (_, _, full) = f
        .call(Method::POST, "/api/v1/sales", Some(json!({"lines": [{"sku": "SKU-2", "qty": 1}], "tender": "card", "customer_tax_id": "B12345674"})), Some(&cookie))
        .await;
    let store = terminal_support::store();
    let setup = f.state.config().fiscal.clone().unwrap();
    // What the returns work does: its own payloads (none here), then the rectification in the
    // same submit. One unit of SKU-1 (3,49 €, 10 % VAT) comes back.
    for (sale, reference, gross, bp) in [(&simple, "RET-1", -349, 1000), (&full, "RET-2", -99, 400)]
    {
        let what = InvoiceFor::Rectifying {
            reference: reference.into(),
            sale: sale["id"].as_str().unwrap().into(),
            original: None,
            net_lines: vec![(gross, bp)],
        };
        let build = with_invoice(setup.clone(), store.clone(), vec![], what);
        let (submitted, ()) = f.node.submit_built(build, |_, _| Ok(())).await.unwrap();
        let Payload::Invoice { record, .. } = &submitted.ops[0].payload else {
            panic!("an invoice op")
        };
        assert_eq!(record.importe_cents, gross);
        assert_eq!(
            record.rectifies.as_ref().unwrap().numserie,
            sale["invoice"].as_str().unwrap()
        );
    }
    let tipos = f.node.read(|r| {
        let chain = r.state().fiscal.get(&store).unwrap();
        ["RET-1", "RET-2"].map(|id| chain.invoice_for(id).unwrap().tipo)
    });
    assert_eq!(tipos, [InvoiceType::R5, InvoiceType::R1]);
    let out = journal(
        &["export", "--format", "xml", "--db"],
        &f.dir.path().join("store.db"),
    );
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.contains("<sum1:TipoFactura>R5</sum1:TipoFactura><sum1:TipoRectificativa>I</sum1:TipoRectificativa><sum1:FacturasRectificadas><sum1:IDFacturaRectificada><sum1:IDEmisorFactura>89890001K</sum1:IDEmisorFactura><sum1:NumSerieFactura>MAD1-1</sum1:NumSerieFactura>"), "{xml}");
    assert!(xml.contains("<sum1:ImporteTotal>-3.49</sum1:ImporteTotal>"));
}

fn journal(args: &[&str], db: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storenode"))
        .arg("journal")
        .args(args)
        .arg(db)
        .output()
        .unwrap()
}

/// A store database with `n` records, closed.
async fn journal_db(n: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = StoreId::parse("madrid-centro").unwrap();
    let node = Node::open(&path, store.actor()).unwrap();
    issue(&node, &store, &setup("MAD1"), n).await;
    node.checkpoint().await.unwrap();
    drop(node);
    (dir, path)
}

fn tamper(db: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn fails_at(db: &Path, record: &str) {
    let out = journal(&["verify", "--db"], db);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(record), "{record:?} not named in: {stderr}");
}

#[tokio::test]
async fn verify_passes_an_intact_journal() {
    let (_dir, db) = journal_db(5).await;
    let out = journal(&["verify", "--db"], &db);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some("ok: 5 records")
    );
}

#[tokio::test]
async fn verify_names_a_changed_record() {
    let (_dir, db) = journal_db(5).await;
    tamper(
        &db,
        "UPDATE fiscal_records SET importe_cents = importe_cents - 100 WHERE position = 3",
    );
    fails_at(&db, "record 3 (MAD1-3)");
}

#[tokio::test]
async fn verify_names_where_a_deleted_record_is_missing() {
    let (_dir, db) = journal_db(5).await;
    tamper(&db, "DELETE FROM fiscal_records WHERE position = 2");
    fails_at(&db, "record 2 (MAD1-3): position 3, expected 2");
}

#[tokio::test]
async fn verify_names_the_first_of_two_swapped_records() {
    let (_dir, db) = journal_db(5).await;
    // Records 2 and 3 trade places: every column but the position moves.
    tamper(
        &db,
        "CREATE TEMP TABLE t AS SELECT * FROM fiscal_records WHERE position IN (2, 3);
         UPDATE fiscal_records SET position = -position WHERE position IN (2, 3);
         INSERT INTO fiscal_records SELECT store, 5 - position, kind, issuer_nif, issuer_name,
           series, number, fecha, tipo, cuota_cents, importe_cents, vat, customer_tax_id,
           rectifies_numserie, rectifies_fecha, reference, generated_at, previous, huella FROM t;
         DELETE FROM fiscal_records WHERE position < 0;",
    );
    fails_at(&db, "record 2 (MAD1-3)");
}

#[tokio::test]
async fn export_writes_the_aeat_fields_and_an_outside_check_recomputes_the_chain() {
    let (_dir, db) = journal_db(4).await;
    let out = journal(&["export", "--db"], &db);
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let mut previous = String::new();
    for (i, r) in lines.iter().enumerate() {
        assert_eq!(r["NumSerieFactura"], format!("MAD1-{}", i + 1));
        assert_eq!(r["TipoFactura"], "F2");
        assert_eq!(r["HuellaAnterior"], previous.as_str());
        // The hash recomputed from the exported fields alone, as DESIGN.md section 13 says.
        let s = |k: &str| r[k].as_str().unwrap().to_string();
        let input = format!(
            "IDEmisorFactura={}&NumSerieFactura={}&FechaExpedicionFactura={}&TipoFactura={}&CuotaTotal={}&ImporteTotal={}&Huella={}&FechaHoraHusoGenRegistro={}",
            s("IDEmisorFactura"), s("NumSerieFactura"), s("FechaExpedicionFactura"), s("TipoFactura"),
            s("CuotaTotal"), s("ImporteTotal"), previous, s("FechaHoraHusoGenRegistro")
        );
        assert_eq!(
            s("Huella"),
            hex::encode_upper(Sha256::digest(input.as_bytes()))
        );
        previous = s("Huella");
    }
    assert_eq!(lines[0]["ImporteTotal"], "22.10");
    assert_eq!(lines[0]["CuotaTotal"], "3.01");
    let stamp = lines[0]["FechaHoraHusoGenRegistro"].as_str().unwrap();
    assert!(
        stamp.ends_with("+01:00") || stamp.ends_with("+02:00"),
        "{stamp}"
    );

    let out = journal(&["export", "--format", "xml", "--db"], &db);
    let xml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(xml.matches("<sum1:RegistroAlta>").count(), 4);
    assert_eq!(
        xml.matches("<sum1:PrimerRegistro>S</sum1:PrimerRegistro>")
            .count(),
        1
    );
    assert!(xml.contains("<sum:Cabecera><sum1:ObligadoEmision><sum1:NombreRazon>Tiendas Demo SL</sum1:NombreRazon><sum1:NIF>89890001K</sum1:NIF>"));
}

#[tokio::test]
async fn hq_checks_each_stores_chain_as_records_arrive() {
    let port = sync_support::embedded_broker();
    let chain = sync_support::Chain::start(port).await;
    chain.seed().await;
    let a = sync_support::store_a();
    let setup = setup("NORTE");
    for i in 0..3 {
        let draft = InvoiceDraft::sale(&format!("S-{i}"), [(1, 250, 1000)], None);
        let payloads = vec![sync_support::sale(&a, 1)];
        let build = with_invoice(setup.clone(), a.clone(), payloads, InvoiceFor::Sale(draft));
        chain.a.submit_built(build, |_, _| Ok(())).await.unwrap();
    }
    let hq = chain.hq.clone();
    let store = a.clone();
    sync_support::wait_for(Duration::from_secs(10), "HQ holds the 3 records", || {
        chain_len(&hq, &store) == 3
    })
    .await;
    let (intact, last) = chain.hq.read(|r| {
        let c = r.state().fiscal.get(&a).unwrap();
        (c.broken_at.is_none(), c.last_numserie.clone())
    });
    assert!(intact);
    assert_eq!(last, "NORTE-3");
    // HQ's copy verifies too, with the same command. The replica in memory is updated inside
    // the writer's transaction, a moment before its commit: wait for the rows, do not race them.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let hq_rows = chain
            .hq
            .query(|c| {
                c.query_row("SELECT count(*) FROM fiscal_records", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await
            .unwrap();
        if hq_rows == 3 {
            break;
        }
        assert!(hq_rows < 3, "{hq_rows} records at HQ");
        assert!(
            std::time::Instant::now() < deadline,
            "{hq_rows} of 3 records committed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    chain.close().await;
}

/// What the AEAT stand-in answers to each submission, in turn.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Every record `Correcto`; wait this many seconds.
    Accept(u64),
    /// The last record of the batch `Incorrecto` (code 1100), the others `Correcto`.
    RejectLast,
    /// HTTP 503, as when the service is down.
    Down,
}

#[derive(Default)]
struct Aeat {
    script: std::collections::VecDeque<Answer>,
    bodies: Vec<String>,
}

/// The numbers of the registrations in a request, in order.
fn numbers_in(body: &str) -> Vec<String> {
    body.split("<sum1:RegistroAlta>")
        .skip(1)
        .filter_map(|r| {
            let start = r.find("<sum1:NumSerieFactura>")? + "<sum1:NumSerieFactura>".len();
            let end = r[start..].find('<')?;
            Some(r[start..start + end].to_string())
        })
        .collect()
}

fn aeat_answer(numbers: &[String], answer: Answer) -> (StatusCode, String) {
    let (wait, reject_last) = match answer {
        Answer::Accept(wait) => (wait, false),
        Answer::RejectLast => (0, true),
        Answer::Down => return (StatusCode::SERVICE_UNAVAILABLE, "down".into()),
    };
    let mut lines = String::new();
    for (i, n) in numbers.iter().enumerate() {
        let bad = reject_last && i + 1 == numbers.len();
        lines.push_str(&format!(
            "<tikR:RespuestaLinea><tikR:IDFactura><tik:IDEmisorFactura>89890001K</tik:IDEmisorFactura><tik:NumSerieFactura>{n}</tik:NumSerieFactura><tik:FechaExpedicionFactura>01-01-2026</tik:FechaExpedicionFactura></tikR:IDFactura><tikR:Operacion><tik:TipoOperacion>Alta</tik:TipoOperacion></tikR:Operacion><tikR:EstadoRegistro>{}</tikR:EstadoRegistro>{}</tikR:RespuestaLinea>",
            if bad { "Incorrecto" } else { "Correcto" },
            if bad { "<tikR:CodigoErrorRegistro>1100</tikR:CodigoErrorRegistro><tikR:DescripcionErrorRegistro>Valor o tipo incorrecto del campo: ImporteTotal</tikR:DescripcionErrorRegistro>" } else { "" },
        ));
    }
    let state = if reject_last {
        "ParcialmenteCorrecto"
    } else {
        "Correcto"
    };
    (
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Header/><env:Body><tikR:RespuestaRegFactuSistemaFacturacion xmlns:tikR=\"https://www2.agenciatributaria.gob.es/static_files/common/internet/dep/aplicaciones/es/aeat/tike/cont/ws/RespuestaSuministro.xsd\" xmlns:tik=\"https://www2.agenciatributaria.gob.es/static_files/common/internet/dep/aplicaciones/es/aeat/tike/cont/ws/SuministroInformacion.xsd\"><tikR:CSV>A-TEST0001</tikR:CSV><tikR:Cabecera><tik:ObligadoEmision><tik:NombreRazon>Tiendas Demo SL</tik:NombreRazon><tik:NIF>89890001K</tik:NIF></tik:ObligadoEmision></tikR:Cabecera><tikR:TiempoEsperaEnvio>{wait}</tikR:TiempoEsperaEnvio><tikR:EstadoEnvio>{state}</tikR:EstadoEnvio>{lines}</tikR:RespuestaRegFactuSistemaFacturacion></env:Body></env:Envelope>"
        ),
    )
}

/// A local HTTP server playing the AEAT's part; answers follow `script`.
async fn aeat_server(script: Vec<Answer>) -> (String, Arc<std::sync::Mutex<Aeat>>) {
    let aeat = Arc::new(std::sync::Mutex::new(Aeat {
        script: script.into(),
        bodies: Vec::new(),
    }));
    let shared = aeat.clone();
    let app = axum::Router::new().route(
        "/wlpl/TIKE-CONT/ws/SistemaFacturacion/VerifactuSOAP",
        axum::routing::post(move |body: String| {
            let shared = shared.clone();
            async move {
                let mut a = shared.lock().unwrap();
                let answer = a.script.pop_front().unwrap_or(Answer::Accept(0));
                let numbers = numbers_in(&body);
                a.bodies.push(body);
                aeat_answer(&numbers, answer)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        format!("http://{addr}/wlpl/TIKE-CONT/ws/SistemaFacturacion/VerifactuSOAP"),
        aeat,
    )
}

fn aeat_config(url: &str) -> storenode::config::AeatConfig {
    storenode::config::AeatConfig {
        url: url.to_string(),
        client_cert: None,
        retry_backoff_ms_max: 60_000,
    }
}

#[tokio::test]
async fn the_aeat_queue_sends_batches_keeps_each_answer_waits_as_asked_and_retries() {
    use storenode::fiscal::aeat::{Step, Submitter};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = StoreId::parse("madrid-centro").unwrap();
    let node = Node::open(&path, store.actor()).unwrap();
    let setup = setup("MAD1");
    let (url, aeat) = aeat_server(vec![
        Answer::Accept(60),
        Answer::RejectLast,
        Answer::Down,
        Answer::Down,
        Answer::Accept(0),
    ])
    .await;
    let requests = || aeat.lock().unwrap().bodies.len();
    let submitter = Submitter::new(node.clone(), store.clone(), &aeat_config(&url)).unwrap();
    let t0 = 1_900_000_000_000;
    assert_eq!(submitter.step(t0).await.unwrap(), Step::Idle);

    issue(&node, &store, &setup, 3).await;
    let sent = submitter.step(t0).await.unwrap();
    assert_eq!(
        sent,
        Step::Sent {
            accepted: 3,
            rejected: 0,
            wait_s: 60
        }
    );
    let first = aeat.lock().unwrap().bodies[0].clone();
    assert_eq!(numbers_in(&first), ["MAD1-1", "MAD1-2", "MAD1-3"]);
    assert!(first.contains("<soapenv:Body><sum:RegFactuSistemaFacturacion"));
    assert!(first.contains("<sum1:PrimerRegistro>S</sum1:PrimerRegistro>"));

    // The AEAT asked for 60 s: new records wait for them, nothing is sent meanwhile.
    issue(&node, &store, &setup, 2).await;
    assert_eq!(
        submitter.step(t0 + 59_999).await.unwrap(),
        Step::Waiting {
            until_ms: t0 + 60_000
        }
    );
    assert_eq!(requests(), 1);
    let sent = submitter.step(t0 + 60_000).await.unwrap();
    assert_eq!(
        sent,
        Step::Sent {
            accepted: 1,
            rejected: 1,
            wait_s: 0
        }
    );
    let second = aeat.lock().unwrap().bodies[1].clone();
    assert_eq!(numbers_in(&second), ["MAD1-4", "MAD1-5"]);
    let third_huella = node
        .query({
            let s = store.clone();
            move |c| storenode::store::fiscal::record_at(c, s.as_str(), 3)
        })
        .await
        .unwrap()
        .unwrap()
        .huella;
    assert!(second.contains(
        "<sum1:NumSerieFactura>MAD1-3</sum1:NumSerieFactura><sum1:FechaExpedicionFactura>"
    ));
    assert!(second.contains(&format!(
        "<sum1:Huella>{third_huella}</sum1:Huella></sum1:RegistroAnterior>"
    )));

    // The service goes down: the batch is retried after a backoff that doubles.
    issue(&node, &store, &setup, 1).await;
    let t1 = t0 + 70_000;
    let Step::Failed { retry_at_ms, error } = submitter.step(t1).await.unwrap() else {
        panic!("a failed step")
    };
    assert!(error.contains("503"), "{error}");
    let metrics = storenode::fiscal::aeat::render_metrics(&node, &store).await;
    assert!(
        metrics.contains("storenode_aeat_unanswered{store=\"madrid-centro\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("storenode_aeat_failures{store=\"madrid-centro\"} 1"),
        "{metrics}"
    );
    assert_eq!(retry_at_ms, t1 + 1_000);
    assert_eq!(
        submitter.step(t1 + 999).await.unwrap(),
        Step::Waiting {
            until_ms: t1 + 1_000
        }
    );
    let Step::Failed { retry_at_ms, .. } = submitter.step(t1 + 1_000).await.unwrap() else {
        panic!("down again")
    };
    assert_eq!(retry_at_ms, t1 + 1_000 + 2_000);
    assert_eq!(
        submitter.step(t1 + 3_000).await.unwrap(),
        Step::Sent {
            accepted: 1,
            rejected: 0,
            wait_s: 0
        }
    );
    assert_eq!(numbers_in(&aeat.lock().unwrap().bodies[4]), ["MAD1-6"]);

    // Each record's answer is kept, durably: a restarted node sends nothing again.
    let s = store.clone();
    let answers = node
        .query(move |c| storenode::store::fiscal::answers(c, s.as_str()))
        .await
        .unwrap();
    let statuses: Vec<&str> = answers.iter().map(|a| a.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["accepted", "accepted", "accepted", "accepted", "rejected", "accepted"]
    );
    assert_eq!(answers[4].code.as_deref(), Some("1100"));
    assert!(answers[4]
        .message
        .as_deref()
        .unwrap()
        .contains("ImporteTotal"));
    assert_eq!(answers[0].csv.as_deref(), Some("A-TEST0001"));
    drop(submitter);
    node.checkpoint().await.unwrap();
    drop(node);
    let node = Node::open(&path, store.actor()).unwrap();
    let submitter = Submitter::new(node.clone(), store.clone(), &aeat_config(&url)).unwrap();
    assert_eq!(submitter.step(t1 + 10_000).await.unwrap(), Step::Idle);
    assert_eq!(requests(), 5);
}

#[tokio::test]
async fn the_running_queue_sends_a_new_record_without_being_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreId::parse("madrid-centro").unwrap();
    let node = Node::open(&dir.path().join("store.db"), store.actor()).unwrap();
    let (url, aeat) = aeat_server(vec![]).await;
    let submitter =
        storenode::fiscal::aeat::Submitter::new(node.clone(), store.clone(), &aeat_config(&url))
            .unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = submitter.spawn(shutdown);
    issue(&node, &store, &setup("MAD1"), 2).await;
    let n = node.clone();
    let s = store.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = s.clone();
        let answered = n
            .query(move |c| storenode::store::fiscal::answers(c, s.as_str()))
            .await
            .unwrap()
            .len();
        if answered == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "records not sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(!aeat.lock().unwrap().bodies.is_empty());
}
