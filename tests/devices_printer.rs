//! Printing end to end: documents -> ESC/POS -> TCP -> printer-sim -> .txt and .png, and the
//! durable queue delivering a job exactly once to a printer that comes up late.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use storenode::devices::escpos::{
    PickupMark, Receipt, ReceiptLine, StoreHeader, Tender, COLUMNS_80MM,
};
use storenode::devices::print_queue::{self, Backoff, PrintWorker};
use storenode::devices::printer::PrinterTransport;
use storenode::devices::printer_sim::PrinterSim;
use storenode::domain::pickup::{qr_payload, PickupCode};
use storenode::domain::ActorId;
use storenode::store::Node;
use tokio::sync::{watch, Notify};

const DEADLINE: Duration = Duration::from_secs(20);

fn sample_receipt(qr: &str) -> Receipt {
    let line = |name: &str, qty, unit_cents, vat_bp| ReceiptLine {
        name: name.into(),
        qty,
        unit_cents,
        vat_bp,
    };
    Receipt {
        store: StoreHeader {
            name: "Ultramarinos Año Nuevo".into(),
            address: vec![
                "C/ Mayor 12, 28013 Madrid".into(),
                "Tel. 910 000 000".into(),
            ],
            tax_id: "B12345678".into(),
        },
        number: "MC-000123".into(),
        issued_at: "14/03/2025 18:05".into(),
        lines: vec![
            line("Jamón ibérico de bellota 100 g", 2, 1295, 1000),
            line("Pan de Año Nuevo", 1, 250, 400),
            line("Aceite de oliva virgen extra 1 l", 1, 899, 1000),
            line("Piña en almíbar", 3, 175, 1000),
            line("Vino tinto crianza", 1, 1150, 2100),
        ],
        tender: Tender::Cash { given_cents: 6000 },
        pickup: Some(PickupMark {
            code: "K7Q2MZ".into(),
            qr: qr.into(),
        }),
        sale_ref: None,
        footer: vec![
            "¡Gracias por su visita!".into(),
            "Conserve el ticket: 30 días de devolución".into(),
        ],
        invoice: None,
    }
}

/// Polls `check` until it returns Some or the deadline passes.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn decode_qrs(png: &Path) -> Vec<String> {
    let img = image::open(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, content)| content))
        .collect()
}

/// Where to keep the printed files: a temp dir, or $DEVICES_PRINT_DIR to look at them.
fn out_dir(name: &str) -> (Option<tempfile::TempDir>, PathBuf) {
    match std::env::var_os("DEVICES_PRINT_DIR") {
        Some(dir) => {
            let path = PathBuf::from(dir).join(name);
            let _ = std::fs::remove_dir_all(&path);
            (None, path)
        }
        None => {
            let tmp = tempfile::tempdir().unwrap();
            let path = tmp.path().to_path_buf();
            (Some(tmp), path)
        }
    }
}

#[tokio::test]
async fn receipt_with_accents_and_pickup_qr_prints_through_tcp_to_the_emulator() {
    let (_tmp, out) = out_dir("receipt");
    let sim = PrinterSim::bind("127.0.0.1:0".parse().unwrap(), out.clone())
        .await
        .unwrap();
    let addr = sim.local_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(sim.serve(shutdown));

    let code = PickupCode::parse("K7Q2MZ").unwrap();
    let qr = qr_payload("ord-2025-0042", &code, b"chain-key");
    let receipt = sample_receipt(&qr);
    let printer = PrinterTransport::Tcp {
        addr: addr.to_string(),
    };
    printer
        .send(&receipt.to_escpos(COLUMNS_80MM))
        .await
        .unwrap();

    let txt = eventually("the receipt text", || {
        files_with_ext(&out, "txt").into_iter().next()
    })
    .await;
    let text = std::fs::read_to_string(&txt).unwrap();
    for expected in [
        "Ultramarinos Año Nuevo",
        "C/ Mayor 12, 28013 Madrid",
        "Jamón ibérico de bellota 100 g",
        "  2 x 12,95 €",
        "25,90 €",
        "Piña en almíbar",
        "TOTAL",
        "Efectivo",
        "¡Gracias por su visita!",
        "K7Q2MZ",
        "[CUT]",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let total = receipt.total_cents();
    assert_eq!(total, 2590 + 250 + 899 + 525 + 1150);
    assert!(
        text.contains("TOTAL                                    54,14 €"),
        "{text}"
    );
    assert!(text.contains(&format!("[QR {qr}]")));

    let png = txt.with_extension("png");
    assert_eq!(decode_qrs(&png), vec![qr.clone()]);

    // Status queries are answered by the emulator, like a real printer's DLE EOT.
    let health = printer.status().await.unwrap();
    assert!(!health.paper_out && !health.cover_open);

    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
}

/// A port free right now, on a loopback address of its own so that the other tests' listeners
/// (on 127.0.0.1:0) can never be handed the same address while this printer is "off".
fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.77:0").unwrap();
    listener.local_addr().unwrap()
}

/// The real binary, killed on drop.
struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_sim_binary(addr: SocketAddr, out: &Path) -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storenode"))
        .args(["printer-sim", "--listen", &addr.to_string(), "--out"])
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(line.starts_with("printer-sim listening on"), "{line}");
    SimProcess(child)
}

#[tokio::test]
async fn a_printer_that_is_down_gets_the_job_exactly_once_when_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("prints");
    // The queue lives in a node's database and the worker goes through the node's writer.
    let node = Node::open(
        &dir.path().join("node.db"),
        ActorId::parse("store:madrid-centro").unwrap(),
    )
    .unwrap();
    let list = |node: &Node| {
        node.query_blocking(|c| Ok(print_queue::list(c, Some("till"), 10).unwrap()))
            .unwrap()
    };
    let enqueue = |node: &Node, job: Vec<u8>, now: i64| {
        let node = node.clone();
        async move {
            node.write(
                move |tx| Ok(print_queue::enqueue(tx, "till", "receipt", &job, now).unwrap()),
            )
            .await
            .unwrap()
        }
    };
    let addr = free_port();

    let wake = Arc::new(Notify::new());
    let worker = PrintWorker {
        node: node.clone(),
        printer: "till".into(),
        transport: PrinterTransport::Tcp {
            addr: addr.to_string(),
        },
        backoff: Backoff {
            min_ms: 20,
            max_ms: 200,
        },
        wake: wake.clone(),
    };
    let (stop, shutdown) = watch::channel(false);
    let (handle, health) = worker.spawn(shutdown);

    let qr = qr_payload("ord-7", &PickupCode::parse("AB2CD3").unwrap(), b"k");
    let job = sample_receipt(&qr).to_escpos(COLUMNS_80MM);
    let id = enqueue(&node, job, 0).await;
    wake.notify_one();

    // The printer is off: the job fails, stays queued and the status says why.
    eventually("a failed attempt", || {
        (list(&node)[0].attempts >= 2).then_some(())
    })
    .await;
    let h = health.borrow().clone();
    assert_eq!(h.online, Some(false));
    assert!(h.last_error.unwrap().contains("cannot reach printer"));
    let pending = node.query_blocking(|c| Ok(print_queue::pending_count(c, "till").unwrap()));
    assert_eq!(pending.unwrap(), 1);

    // The printer comes up on the same address: the job arrives, and is marked printed.
    let _sim = start_sim_binary(addr, &out);
    eventually("the job to be printed", || {
        list(&node)[0].printed_at_ms.map(|_| ())
    })
    .await;
    // A second job is a barrier: once it is printed, any duplicate of the first would be too.
    let second = enqueue(&node, b"\x1b@second\n\x1dVB\x03".to_vec(), 1).await;
    wake.notify_one();
    eventually("both jobs on paper", || {
        let texts: Vec<String> = files_with_ext(&out, "txt")
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        let second = texts.iter().any(|t| t.contains("second"));
        let first = texts.iter().any(|t| t.contains("Jamón ibérico"));
        (first && second).then_some(())
    })
    .await;
    let texts: Vec<String> = files_with_ext(&out, "txt")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(
        texts.iter().filter(|t| t.contains("Jamón ibérico")).count(),
        1
    );
    assert!(id < second);
    eventually("health online", || {
        (health.borrow().online == Some(true)).then_some(())
    })
    .await;

    stop.send(true).unwrap();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn bag_label_and_pick_list_print_with_a_scannable_qr() {
    use storenode::devices::escpos::{BagLabel, PickLine, PickList};
    let (_tmp, out) = out_dir("label");
    let sim = PrinterSim::bind("127.0.0.1:0".parse().unwrap(), out.clone())
        .await
        .unwrap();
    let printer = PrinterTransport::Tcp {
        addr: sim.local_addr().unwrap().to_string(),
    };
    let (stop, shutdown) = watch::channel(false);
    let server = tokio::spawn(sim.serve(shutdown));

    let qr = qr_payload("ord-9", &PickupCode::parse("ZZ3KQ7").unwrap(), b"k");
    let label = BagLabel {
        order_id: "ord-9".into(),
        initials: "M.Á.G.".into(),
        bag: (1, 2),
        pickup: PickupMark {
            code: "ZZ3KQ7".into(),
            qr: qr.clone(),
        },
    };
    let pick = PickList {
        order_id: "ord-9".into(),
        customer: "María Ángeles García".into(),
        printed_at: "14/03/2025 10:00".into(),
        lines: vec![PickLine {
            location: "A3-02".into(),
            sku: "JAM-100".into(),
            ean: "8412345678905".into(),
            name: "Jamón ibérico 100 g".into(),
            qty: 2,
        }],
    };
    printer.send(&label.to_escpos()).await.unwrap();
    printer.send(&pick.to_escpos(COLUMNS_80MM)).await.unwrap();
    let files = eventually("two jobs", || {
        let f = files_with_ext(&out, "txt");
        (f.len() == 2).then_some(f)
    })
    .await;
    let label_txt = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        label_txt.contains("M.Á.G.") && label_txt.contains("Bolsa 1 de 2"),
        "{label_txt}"
    );
    assert_eq!(decode_qrs(&files[0].with_extension("png")), vec![qr]);
    let pick_txt = std::fs::read_to_string(&files[1]).unwrap();
    assert!(
        pick_txt.contains("[ ]   2 x Jamón ibérico 100 g"),
        "{pick_txt}"
    );
    assert!(pick_txt.contains("A3-02") && pick_txt.contains("EAN 8412345678905"));
    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
}
