//! Scanner sources end to end: a pty (serial), a TCP client and a stdin-like pipe all deliver
//! the same parsed scan; the counter bridge's frames arrive over a pty; a missing device is
//! retried and reported.

use std::io::Write;
use std::time::Duration;

use storenode::devices::barcode::{parse_scan, Scan};
use storenode::devices::scanner::{
    spawn_reader_scanner, spawn_scanner, ScanEvent, ScannerConfig, ScannerHandle, SourceState,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};

const DEADLINE: Duration = Duration::from_secs(10);
const EAN: &str = "8412345678905";

async fn next_event(rx: &mut mpsc::Receiver<ScanEvent>) -> ScanEvent {
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("timed out waiting for a scan")
        .expect("scanner channel closed")
}

async fn wait_state(handle: &mut ScannerHandle, want: impl Fn(&SourceState) -> bool) {
    tokio::time::timeout(DEADLINE, handle.status.wait_for(|s| want(&s.state)))
        .await
        .expect("timed out waiting for scanner state")
        .expect("status channel closed");
}

struct Pty {
    master: std::fs::File,
    _slave: std::os::fd::OwnedFd,
    path: std::path::PathBuf,
}

fn open_pty() -> Pty {
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pty.slave).unwrap();
    Pty {
        master: std::fs::File::from(pty.master),
        _slave: pty.slave,
        path,
    }
}

#[tokio::test]
async fn a_scan_from_a_pty_a_tcp_client_and_stdin_arrives_as_the_same_parsed_scan() {
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let expected: Scan = parse_scan(EAN).unwrap();

    // Serial, through a pty.
    let mut pty = open_pty();
    let mut serial = spawn_scanner(
        ScannerConfig::Serial {
            path: pty.path.clone(),
            baud: 9600,
        },
        tx.clone(),
        shutdown.clone(),
    );
    wait_state(&mut serial, |s| *s == SourceState::Connected).await;
    pty.master.write_all(format!("{EAN}\r").as_bytes()).unwrap();
    let from_pty = next_event(&mut rx).await;
    assert!(
        from_pty.source.starts_with("serial:/dev/pts/"),
        "{}",
        from_pty.source
    );

    // TCP, as a network scanner sends it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut tcp = spawn_scanner(
        ScannerConfig::Tcp { listen: port },
        tx.clone(),
        shutdown.clone(),
    );
    wait_state(&mut tcp, |s| *s == SourceState::Connected).await;
    let mut client = tokio::net::TcpStream::connect(port).await.unwrap();
    client
        .write_all(format!("{EAN}\r\n").as_bytes())
        .await
        .unwrap();
    let from_tcp = next_event(&mut rx).await;
    assert_eq!(from_tcp.source, format!("tcp:{port}"));

    // Stdin: the same reader the `stdin` source uses, over a pipe.
    let (mut writer, reader) = tokio::io::duplex(64);
    let mut stdin = spawn_reader_scanner("stdin", reader, tx.clone(), shutdown.clone());
    writer
        .write_all(format!("{EAN}\n").as_bytes())
        .await
        .unwrap();
    let from_stdin = next_event(&mut rx).await;
    drop(writer);
    wait_state(&mut stdin, |s| *s == SourceState::Stopped).await;

    for event in [&from_pty, &from_tcp, &from_stdin] {
        assert_eq!(event.raw, EAN);
        assert_eq!(event.parsed.as_ref(), Ok(&expected));
    }

    // A bad scan is an event with a reason, and the source keeps going.
    client.write_all(b"8412345678901\r\n").await.unwrap();
    let bad = next_event(&mut rx).await;
    assert_eq!(
        bad.parsed.unwrap_err().to_string(),
        "check digit 1, expected 5 in 8412345678901"
    );
    assert_eq!(tcp.status.borrow().bad_scans, 1);

    stop.send(true).unwrap();
    for handle in [serial, tcp, stdin] {
        tokio::time::timeout(DEADLINE, handle.join)
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn the_counter_bridge_frames_arrive_over_a_serial_link() {
    let (tx, mut rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let mut pty = open_pty();
    let mut bridge = spawn_scanner(
        ScannerConfig::Bridge {
            path: pty.path.clone(),
            baud: 115200,
        },
        tx,
        shutdown,
    );
    wait_state(&mut bridge, |s| *s == SourceState::Connected).await;
    let mut frame = [0u8; storenode_firmware::frame::FRAME_LEN_MAX];
    let n = storenode_firmware::encode_frame(7, b"]E496385074", &mut frame).unwrap();
    let mut wire = vec![0xff, 0x00];
    wire.extend_from_slice(&frame[..n]);
    pty.master.write_all(&wire).unwrap();
    let event = next_event(&mut rx).await;
    assert_eq!(event.raw, "]E496385074");
    assert_eq!(event.aim.unwrap().to_string(), "]E4");
    assert_eq!(
        event.parsed.unwrap().product_ean().as_deref(),
        Some("96385074")
    );
    stop.send(true).unwrap();
    tokio::time::timeout(DEADLINE, bridge.join)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_missing_device_is_retried_and_its_error_reported() {
    let (tx, _rx) = mpsc::channel(16);
    let (stop, shutdown) = watch::channel(false);
    let mut serial = spawn_scanner(
        ScannerConfig::Serial {
            path: "/dev/does-not-exist-scanner".into(),
            baud: 9600,
        },
        tx,
        shutdown,
    );
    wait_state(
        &mut serial,
        |s| matches!(s, SourceState::Retrying { attempt } if *attempt >= 2),
    )
    .await;
    let error = serial.status.borrow().last_error.clone().unwrap();
    assert!(error.contains("No such file"), "{error}");
    stop.send(true).unwrap();
    tokio::time::timeout(DEADLINE, serial.join)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(serial.status.borrow().state, SourceState::Stopped);
}

#[test]
fn scanner_config_reads_from_toml_by_kind() {
    let config: ScannerConfig =
        toml::from_str("kind = \"evdev\"\npath = \"/dev/input/event3\"\nlayout = \"es\"").unwrap();
    assert_eq!(config.name(), "evdev:/dev/input/event3");
    let config: ScannerConfig = toml::from_str("kind = \"stdin\"").unwrap();
    assert_eq!(config, ScannerConfig::Stdin);
    assert!(toml::from_str::<ScannerConfig>("kind = \"usb\"").is_err());
}
